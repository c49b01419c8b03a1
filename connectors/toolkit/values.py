"""Whether a value the system holds already equals the one a write would send, written once.

A target that sends only what changed compares what it read back with what
the row carries. Systems hand numbers back as text (``"12.50"`` for a sent
``Decimal("12.5")``) and empty fields as ``None`` or ``""``, so a plain ``==``
would see a change in every record: :func:`same_value` is the comparison SAP
and ERPNext writes share. The connector converts the sent value to its wire
form first (a date as the system writes it).
"""

from __future__ import annotations

__all__ = ["same_value"]

from decimal import Decimal, InvalidOperation
from typing import Any

_EMPTY = (None, "")


def same_value(current: Any, sent: Any) -> bool:
    """True when ``current`` (as read) and ``sent`` (in its wire form) are equal, both
    empty (``None`` or ``""``), or the same number (``"12.50"`` and ``12.5``); a boolean
    is never read as a number (``True`` is not ``"1"``)."""
    if current in _EMPTY and sent in _EMPTY:
        return True
    if current == sent:
        return True
    if isinstance(current, bool) or isinstance(sent, bool):
        return False
    try:
        return Decimal(str(current)) == Decimal(str(sent))
    except (InvalidOperation, ValueError):
        return False

"""Whether a value the system holds already equals the one a write would send, written once.

A target that sends only what changed compares what it read back with what
the row carries. Systems hand numbers back as text (``"12.50"`` for a sent
``Decimal("12.5")``) and empty fields as ``None`` or ``""``, so a plain ``==``
would see a change in every record: :func:`same_value` is the comparison SAP
and ERPNext writes share. The connector converts the sent value to its wire
form first (a date as the system writes it). :func:`changed_fields` is what a
write sends on that comparison: the fields that differ, child tables whole.
"""

from __future__ import annotations

__all__ = ["changed_fields", "same_rows", "same_value"]

from collections.abc import Callable, Collection, Mapping, Sequence
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


Same = Callable[[Any, Any], bool]


def same_rows(current: Sequence[Mapping[str, Any]], desired: Sequence[Mapping[str, Any]],
              same: Same = same_value) -> bool:
    """True when a child table ``current`` (as read) holds the ``desired`` rows: as many
    rows, and in each the fields its desired row sets ``same``; fields only the system
    sets (row ids, positions) are not compared."""
    if len(current) != len(desired):
        return False
    return all(same(have.get(field), value)
               for have, want in zip(current, desired, strict=True)
               for field, value in want.items())


def changed_fields(current: Mapping[str, Any], desired: Mapping[str, Any], *,
                   tables: Collection[str] = (), same: Same = same_value) -> dict[str, Any]:
    """``{field: desired value}`` for the fields of ``desired`` whose value ``current`` does
    not hold (by ``same``), in ``desired``'s order; ``{}`` when nothing changed.

    A field named in ``tables`` is a child table (a list of rows; ``None`` is ``[]``),
    compared by :func:`same_rows` and answered whole: APIs replace a child table's rows."""
    changes: dict[str, Any] = {}
    for field, value in desired.items():
        if field in tables:
            value = list(value or [])
            differs = not same_rows(list(current.get(field) or []), value, same)
        else:
            differs = not same(current.get(field), value)
        if differs:
            changes[field] = value
    return changes

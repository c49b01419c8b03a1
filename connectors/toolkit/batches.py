"""Batch calls whose one bad record refuses them all, written once.

An ERP that runs each call in one database transaction (Odoo's ``create`` of a
list, Tryton's every RPC call) writes nothing when one record of the batch is
refused. :func:`isolate` runs the batch call and, when the system refuses it,
splits the batch in halves until the refused records are alone: only those
fail, everything else is written, at a cost of about ``k * log2(n)`` extra
calls for ``k`` bad records in ``n``. :func:`chunks` cuts a list into calls.
"""

from __future__ import annotations

__all__ = ["chunks", "isolate"]

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from crm2erp.errors import RecordError

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size`` (at least 1), in order."""
    step = max(1, size)
    for start in range(0, len(items), step):
        yield items[start:start + step]


def isolate(items: Sequence[T], call: Callable[[Sequence[T]], Any],
            failed: Callable[[T, str], None], *,
            refused: type[Exception] | tuple[type[Exception], ...] = RecordError,
            message: Callable[[Exception], str] = str) -> list[tuple[Sequence[T], Any]]:
    """Run ``call`` on ``items``; when it raises ``refused``, split until the culprits
    are alone.

    Returns the ``(sub-batch, result)`` pairs that went through, in order;
    ``failed(item, message(error))`` is called for each item refused on its own.
    Any other exception (a lost answer, a fatal one) propagates.
    """
    if not items:
        return []
    try:
        return [(items, call(items))]
    except refused as exc:
        if len(items) == 1:
            failed(items[0], message(exc))
            return []
    middle = len(items) // 2
    return (isolate(items[:middle], call, failed, refused=refused, message=message)
            + isolate(items[middle:], call, failed, refused=refused, message=message))

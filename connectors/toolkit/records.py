"""Acting on records by the id the engine holds (deletes, archives, cancels), written once.

For ERPs whose records have integer ids (Odoo, Tryton) the engine holds the id
a write answered. A record deleted by hand in the ERP meanwhile must come back
as a failure naming it, never as done, so the ids are looked up first, in one
query, and only the ones found are acted on: :func:`for_found_ids`.
"""

from __future__ import annotations

__all__ = ["as_id", "for_found_ids"]

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from crm2erp.connectors.base import WriteResult


def as_id(value: Any) -> int | None:
    """An integer record id from an int or a digit string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def for_found_ids(ids: Sequence[str], find: Callable[[list[int]], Mapping[int, Any]],
                  act: Callable[[str, int, Any], WriteResult],
                  missing: Callable[[str], WriteResult]) -> list[WriteResult]:
    """One result per id, in order.

    ``find(record ids)`` answers ``{record id: record}`` for those that exist
    (called once, not at all when no id is an integer); ``act(id, record id,
    record)`` answers for each found one; ``missing(id)`` for an id that is not
    an integer or that ``find`` did not answer.
    """
    wanted = [as_id(i) for i in ids]
    numbers = sorted({i for i in wanted if i is not None})
    found = find(numbers) if numbers else {}
    return [act(str(key), record_id, found[record_id])
            if record_id is not None and record_id in found else missing(str(key))
            for key, record_id in zip(ids, wanted, strict=True)]

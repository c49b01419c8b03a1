"""One result per row of a batch, set by position in any order, written once.

A target that plans a batch (look up what exists, then create some rows, write
others, fail the rest) settles each row at a different step: a row without a
key at once, a refused one while planning, a created one when the create
answers. :class:`RowResults` holds one slot per row and each usable row's key;
:meth:`RowResults.keyed` is the first step of most upserts (rows without a key,
or with a key an earlier row of the batch has, fail and are never sent).
"""

from __future__ import annotations

__all__ = ["RowResults"]

from collections.abc import Callable, Sequence
from typing import Any

from crm2erp.connectors.base import WriteAction, WriteResult


class RowResults:
    """The results of ``count`` rows; ``keys`` maps the position of each row still to
    write to its key.

    Invariant: :meth:`all` answers one result per row, in the rows' order, once every
    row has one (a position left unset is a bug in the connector: it raises).
    """

    def __init__(self, count: int, keys: dict[int, str] | None = None):
        self.slots: list[WriteResult | None] = [None] * count
        self.keys: dict[int, str] = dict(keys or {})

    @classmethod
    def keyed(cls, rows: Sequence[Any], key_of: Callable[[Any], str], *, missing: str,
              twice: Callable[[str], str]) -> RowResults:
        """Results of ``rows`` whose ``keys`` are the usable ones: ``key_of(row)`` empty
        fails with ``missing`` (key ``""``), a key an earlier row has with ``twice(key)``."""
        results = cls(len(rows))
        seen: set[str] = set()
        for pos, row in enumerate(rows):
            key = key_of(row)
            if not key:
                results.slots[pos] = WriteResult("", WriteAction.FAILED, error=missing)
            elif key in seen:
                results.fail(pos, twice(key), key=key)
            else:
                results.keys[pos] = key
                seen.add(key)
        return results

    def key(self, pos: int) -> str:
        return self.keys.get(pos, "")

    def set(self, pos: int, action: WriteAction, target_id: str | None = None, *,
            error: str | None = None) -> None:
        """The result of row ``pos``: ``action`` on the record ``target_id``."""
        self.slots[pos] = WriteResult(self.key(pos), action, target_id, error=error)

    def fail(self, pos: int, error: str, *, key: str | None = None) -> None:
        """Row ``pos`` FAILED saying ``error`` (under ``key``, else its key)."""
        self.slots[pos] = WriteResult(self.key(pos) if key is None else key,
                                      WriteAction.FAILED, error=error)

    def all(self) -> list[WriteResult]:
        missing = [pos for pos, result in enumerate(self.slots) if result is None]
        if missing:
            raise RuntimeError(f"rows {missing} have no result")
        return [result for result in self.slots if result is not None]

"""Batches in exact ``(cursor, key)`` order from APIs that can only sort by the cursor.

HubSpot's search API accepts one sort property, and Dataverse sorts GUIDs in
SQL Server's byte order, so neither gives the key order the engine's resume
logic needs among rows that share a timestamp (mass updates and imports make
thousands of them). Rows sorted by cursor alone arrive with equal cursors
next to each other, so :class:`OrderedBatcher` holds back one group of equal
cursor values, sorts it by key (as text, like :class:`Cursor` comparisons),
drops what is at or before the watermark, merges in deletions found
elsewhere (HubSpot's archived list, Dataverse's audit log) and cuts batches.
A resumed read therefore skips exactly the rows it already has.

Used by the HubSpot and Dynamics connectors (it has nothing specific to
either); only one group of equal timestamps is held in memory at a time.
"""

from __future__ import annotations

__all__ = ["OrderedBatcher", "merged_batches"]

import heapq
from collections.abc import Iterable, Iterator

from crm2erp.connectors.base import Batch, Cursor, Row
from crm2erp.connectors.toolkit.timestamps import iso_millis
from crm2erp.errors import FatalError

Position = tuple[str, str]
#: ``(position, row, deleted key)``: a row, or (row None) the key of a deletion
Item = tuple[Position, Row | None, str | None]


def merged_batches(sources: Iterable[Iterable[Item]], since: Cursor | None, since_stamp: str,
                   batch_size: int) -> Iterator[Batch]:
    """Batches from ``sources`` that are each sorted by position (APIs that sort by
    ``(cursor, key)`` themselves: one query per source, a deletion log...), merged.

    ``since_stamp`` is the watermark's value in the positions' text form: items
    before it are dropped, and at it those at or before ``since.key``.
    """
    after = (since_stamp, since.key) if since is not None else None
    rows: list[Row] = []
    deleted: list[str] = []
    last: Position | None = None
    for position, row, gone in heapq.merge(*sources, key=lambda item: item[0]):
        if after is not None and (position[0] < after[0] or (
                after[1] is not None and position <= after)):
            continue  # before the watermark, or already read at the same instant
        if gone is not None:
            deleted.append(gone)
        else:
            rows.append(row)
        last = position
        if len(rows) + len(deleted) >= max(1, batch_size):
            yield Batch(rows, Cursor(*last), deleted)
            rows, deleted = [], []
    if rows or deleted:
        yield Batch(rows, Cursor(*last), deleted)


class OrderedBatcher:
    """Feed rows sorted by cursor value; get batches sorted by ``(cursor, key)``.

    ``since`` is the engine's inclusive watermark: rows before its value are
    dropped, and at its value only keys after ``since.key`` pass. Deleted keys
    (``deletions``: ``(cursor, key)`` pairs in any order) are merged into the
    same ordered stream. ``with_cursor=False`` is for unordered reads (list
    endpoints): batches carry no cursor except the last, which carries the
    greatest position seen, so the watermark moves only when the read is done.
    """

    def __init__(self, size: int, since: Cursor | None, *,
                 deletions: Iterable[Position] = (), with_cursor: bool = True):
        self.size = max(1, size)
        self.since: Position | None = None
        self.since_key: str | None = None
        if since is not None:
            self.since = (iso_millis(since.value), since.key or "")
            self.since_key = since.key
        self.with_cursor = with_cursor
        self._deletions = sorted(set(deletions), reverse=True)  # pop() gives the smallest
        self._group: list[tuple[Position, Row | None]] = []
        self._group_stamp: str | None = None
        self._seen_at_stamp: set[str] = set()
        self._rows: list[Row] = []
        self._deleted: list[str] = []
        self._last: Position | None = None
        self._best: Position | None = None

    # -- feeding ---------------------------------------------------------
    def add(self, stamp: str, key: str, row: Row | None) -> Iterator[Batch]:
        """Add one row whose cursor value, normalised by :func:`iso_millis`, is ``stamp``
        (``row`` None: the record ``key`` was deleted at ``stamp``)."""
        if not self.with_cursor:
            yield from self._emit((stamp, key), row)
            return
        if self._group_stamp is not None and stamp < self._group_stamp:
            raise FatalError(f"the API returned rows out of cursor order ({stamp} after "
                             f"{self._group_stamp}); the read cannot be resumed safely")
        if stamp != self._group_stamp:
            yield from self._flush_group()
            self._group_stamp, self._seen_at_stamp = stamp, set()
        if key in self._seen_at_stamp:
            return  # the same row again (a restarted search): already held
        self._seen_at_stamp.add(key)
        self._group.append(((stamp, key), row))

    def batches(self, items: Iterable[tuple[str, str, Row | None]]) -> Iterator[Batch]:
        """Every batch of a whole read: each ``(stamp, key, row)`` of ``items`` (in cursor
        order) fed to :meth:`add`, then :meth:`finish`."""
        for stamp, key, row in items:
            yield from self.add(stamp, key, row)
        yield from self.finish()

    def seen_at(self, stamp: str) -> set[str]:
        """Keys already taken at ``stamp`` (to skip them when a search restarts there)."""
        return set(self._seen_at_stamp) if stamp == self._group_stamp else set()

    def finish(self) -> Iterator[Batch]:
        yield from self._flush_group()
        while self._deletions:
            position = self._deletions.pop()
            yield from self._emit(position, None)
        if self._rows or self._deleted:
            yield self._batch(final=True)
        elif not self.with_cursor and self._best is not None:
            yield Batch([], Cursor(*self._best))

    # -- internals ---------------------------------------------------------
    def _flush_group(self) -> Iterator[Batch]:
        if self._group_stamp is None:
            return
        group = sorted(self._group, key=lambda item: item[0])
        self._group = []
        stamp = self._group_stamp
        for position, row in group:
            while self._deletions and self._deletions[-1] < position:
                yield from self._emit(self._deletions.pop(), None)
            yield from self._emit(position, row)
        while self._deletions and self._deletions[-1][0] <= stamp:
            yield from self._emit(self._deletions.pop(), None)

    def _passes(self, position: Position) -> bool:
        if self.since is None:
            return True
        stamp = self.since[0]
        if position[0] < stamp:
            return False
        return not (self.since_key is not None and position[0] == stamp
                    and position[1] <= self.since_key)

    def _emit(self, position: Position, row: Row | None) -> Iterator[Batch]:
        if not self._passes(position):
            return
        if row is None:
            self._deleted.append(position[1])
        else:
            self._rows.append(row)
        self._last = position
        self._best = max(self._best or position, position)
        if len(self._rows) + len(self._deleted) >= self.size:
            yield self._batch(final=False)

    def _batch(self, final: bool) -> Batch:
        if self.with_cursor:
            mark = self._last
        else:
            mark = self._best if final else None
        batch = Batch(self._rows, Cursor(*mark) if mark else None, self._deleted)
        self._rows, self._deleted = [], []
        return batch

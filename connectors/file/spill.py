"""Sorting more rows than fit in memory: sorted runs on disk, merged lazily.

A file source sorts the rows of a read by (cursor, key). Up to ``run_size``
rows are sorted in memory; beyond that each full run is pickled to a
temporary file and the runs are merged with :func:`heapq.merge`, so a read
holds one run plus one block of rows per run, whatever the file's size.
"""

from __future__ import annotations

__all__ = ["SortedSpill"]

import heapq
import pickle
import tempfile
from collections.abc import Iterator
from operator import itemgetter
from typing import IO, Any

RUN_SIZE = 50_000   # rows sorted in memory before a run goes to disk
_BLOCK = 1000       # at most so many items per pickle in a run on disk
_ORDER = itemgetter(0, 1)


class SortedSpill:
    """Collect ``(position, key, row)`` items with :meth:`add`, then iterate them in
    ``(position, key)`` order (items with equal order keep their arrival order)."""

    def __init__(self, run_size: int | None = None):
        self.run_size = run_size or RUN_SIZE
        self._items: list[tuple[Any, Any, Any]] = []
        self._runs: list[IO[bytes]] = []

    def add(self, item: tuple[Any, Any, Any]) -> None:
        self._items.append(item)
        if len(self._items) > self.run_size:
            self._spill()

    def _spill(self) -> None:
        """The sorted run to disk, pickled in blocks (one pickle per item costs more than
        the sort) of at most ``_BLOCK`` items and 1/50 of a run, so that a merge, which
        holds one block per run, holds far less than a run."""
        self._items.sort(key=_ORDER)
        run = tempfile.TemporaryFile(prefix="crm2erp-sort-")
        block = max(1, min(_BLOCK, self.run_size // 50))
        for start in range(0, len(self._items), block):
            pickle.dump(self._items[start:start + block], run,
                        protocol=pickle.HIGHEST_PROTOCOL)
        run.seek(0)
        self._runs.append(run)
        self._items = []

    @staticmethod
    def _replay(run: IO[bytes]) -> Iterator[tuple[Any, Any, Any]]:
        try:
            while True:
                yield from pickle.load(run)
        except EOFError:
            run.close()

    def __iter__(self) -> Iterator[tuple[Any, Any, Any]]:
        self._items.sort(key=_ORDER)
        if not self._runs:
            yield from self._items
            return
        runs = [self._replay(run) for run in self._runs]
        try:
            yield from heapq.merge(*runs, iter(self._items), key=_ORDER)
        finally:
            for run in self._runs:
                run.close()

    def close(self) -> None:
        for run in self._runs:
            run.close()
        self._runs, self._items = [], []

"""The record store every emulator keeps its data in.

Records are plain dicts with Python values, kept per table (an sObject, a
HubSpot object type, an Odoo model, an OData entity set...) under their key.
What the emulators share is here: one re-entrant lock, a generator seeded once
(so seed data and random test changes are reproducible), numbered ids per
table, and a logical clock. Seeded records get stamps in blocks of
``same_stamp`` records per step (so equal stamps straddle page and batch
boundaries); after the seed the clock moves on (:meth:`RecordStore.end_seed`)
and every later change advances it by one tick, so a run gives the same stamps
whatever the wall clock says. Whole-store snapshots give a request its
all-or-nothing transaction. What a vendor's records look like, and the rules
its API writes by, stay with the emulator.
"""

from __future__ import annotations

__all__ = ["RecordStore"]

import datetime as dt
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

Record = dict[str, Any]


class RecordStore:
    """Records per table, with a seeded generator, id counters and a logical clock."""

    def __init__(self, tables: Iterable[str], *, seed: int = 42,
                 start: dt.datetime = dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                 same_stamp: int = 7, seed_step: dt.timedelta = dt.timedelta(seconds=1)):
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.tables: dict[str, dict[Any, Record]] = {name: {} for name in tables}
        self.counters: dict[str, int] = {}
        self.start = self.clock = start
        self.same_stamp, self.seed_step = max(1, same_stamp), seed_step
        self._seeded: dict[str, int] = {}

    # -- ids and time -------------------------------------------------------
    def next_number(self, counter: str, first: int = 1) -> int:
        """The next number of ``counter`` (``first`` the first time)."""
        with self.lock:
            self.counters[counter] = self.counters.get(counter, first - 1) + 1
            return self.counters[counter]

    def seed_stamp(self, table: str, base: dt.datetime | None = None) -> dt.datetime:
        """The stamp of the next record seeded into ``table``: ``same_stamp`` records share
        each ``seed_step`` after ``base`` (the store's start); the clock follows."""
        with self.lock:
            n = self._seeded.get(table, 0)
            self._seeded[table] = n + 1
            stamp = (base or self.start) + self.seed_step * (n // self.same_stamp)
            self.clock = max(self.clock, stamp)
            return stamp

    def end_seed(self, gap: dt.timedelta = dt.timedelta(days=1)) -> None:
        """Move the clock ``gap`` past the seed data: later changes come after it."""
        self.clock += gap

    def tick(self, seconds: float = 1.0) -> dt.datetime:
        """Advance the clock (a change happened) and return the new time."""
        with self.lock:
            self.clock += dt.timedelta(seconds=seconds)
            return self.clock

    # -- records --------------------------------------------------------------
    def put(self, table: str, key: Any, record: Record) -> Record:
        with self.lock:
            self.tables[table][key] = record
            return record

    def get(self, table: str, key: Any) -> Record | None:
        with self.lock:
            return self.tables[table].get(key)

    def remove(self, table: str, key: Any) -> Record | None:
        with self.lock:
            return self.tables[table].pop(key, None)

    def select(self, table: str, where: Callable[[Record], bool] | None = None) -> list[Record]:
        """The records of ``table`` (those ``where`` accepts), in insertion order."""
        with self.lock:
            return [r for r in self.tables[table].values() if where is None or where(r)]

    def pick(self, table: str, n: int, where: Callable[[Record], bool] | None = None
             ) -> list[Record]:
        """``n`` records drawn at random (from the seeded generator): a test's mass change."""
        with self.lock:
            return self.rng.sample(self.select(table, where), n)

    # -- transactions ---------------------------------------------------------
    def snapshot(self) -> tuple:
        """The state to :meth:`restore`: a copy of every record (and of its list values,
        ids of children say), the counters and the clock."""
        with self.lock:
            tables = {name: {key: {f: list(v) if isinstance(v, list) else v
                                   for f, v in record.items()}
                             for key, record in table.items()}
                      for name, table in self.tables.items()}
            return tables, dict(self.counters), self.clock

    def restore(self, snapshot: tuple) -> None:
        with self.lock:
            self.tables, self.counters, self.clock = snapshot

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: an exception inside restores the state from before."""
        with self.lock:
            saved = self.snapshot()
            try:
                yield
            except BaseException:
                self.restore(saved)
                raise

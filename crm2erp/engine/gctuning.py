"""Fewer garbage collections while a run works through its batches.

A run allocates a few objects per field of every record (rows, mapped dicts,
hashes) and frees nearly all of them by reference counting; Python's cyclic
collector would still walk the young objects every 700 allocations and, now
and then, every object of the process (the imported libraries included).
:func:`fewer_collections` moves what exists when the run starts out of the
collector's sight (``gc.freeze``) and collects the young generation less
often; both are put back when the last run in the process ends. Nothing
changes but when cyclic garbage is found.
"""

from __future__ import annotations

__all__ = ["fewer_collections"]

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# allocations between young collections (Python's default: 700). Each collection walks
# the batch's live objects (tens of thousands at 500 records): a 20k-record full sync
# spent 0.27 s of its 7.4 s CPU in collections at 20,000, 0.06 s at 100,000 (3 MB more peak)
YOUNG_THRESHOLD = 100_000

_lock = threading.Lock()
_active = 0
_saved: tuple[int, ...] = ()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Within the block (nestable, thread-safe), collect less; restored after."""
    global _active, _saved
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(YOUNG_THRESHOLD, _saved[0]), *_saved[1:])
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()

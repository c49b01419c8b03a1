"""The emulator kernel's record store: seed stamps, clock, counters, picks, transactions."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from crm2erp.emulators.kernel.store import RecordStore

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def test_seed_stamps_come_in_blocks_of_same_stamp_and_the_clock_moves_past_them():
    store = RecordStore(["a", "b"], start=START, same_stamp=3)
    stamps = [store.seed_stamp("a") for _ in range(7)]
    assert stamps == [START] * 3 + [START + dt.timedelta(seconds=1)] * 3 + \
        [START + dt.timedelta(seconds=2)]
    assert store.seed_stamp("b") == START          # each table counts its own records
    store.end_seed()
    assert store.clock == START + dt.timedelta(days=1, seconds=2)
    assert store.tick() == START + dt.timedelta(days=1, seconds=3)
    assert store.tick(60) == START + dt.timedelta(days=1, seconds=63)


def test_seed_step_and_base_set_where_and_how_far_apart_blocks_are():
    store = RecordStore(["a"], start=START, same_stamp=2, seed_step=dt.timedelta(minutes=1))
    later = START + dt.timedelta(days=5)
    assert [store.seed_stamp("a", later) for _ in range(3)] == \
        [later, later, later + dt.timedelta(minutes=1)]
    assert store.clock == later + dt.timedelta(minutes=1)


def test_numbers_count_per_counter_from_first():
    store = RecordStore(["a"])
    assert [store.next_number("a") for _ in range(3)] == [1, 2, 3]
    assert store.next_number("version", 1001) == 1001
    assert store.next_number("version", 1001) == 1002
    store.counters["order"] = 100                  # a number range that starts elsewhere
    assert store.next_number("order") == 101


def test_numbers_stay_unique_when_threads_draw_at_once():
    store = RecordStore(["a"])
    drawn: list[int] = []

    def draw():
        for _ in range(500):
            drawn.append(store.next_number("a"))

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(drawn) == list(range(1, 2001))


def test_records_are_put_selected_picked_and_removed():
    store = RecordStore(["a"], seed=7)
    for n in range(10):
        store.put("a", n, {"id": n, "live": n % 2 == 0})
    assert [r["id"] for r in store.select("a", lambda r: r["live"])] == [0, 2, 4, 6, 8]
    picked = [r["id"] for r in store.pick("a", 3, lambda r: r["live"])]
    assert len(set(picked)) == 3 and all(i % 2 == 0 for i in picked)
    again = RecordStore(["a"], seed=7)
    for n in range(10):
        again.put("a", n, {"id": n, "live": n % 2 == 0})
    assert [r["id"] for r in again.pick("a", 3, lambda r: r["live"])] == picked  # seeded
    assert store.remove("a", 4) == {"id": 4, "live": True}
    assert store.get("a", 4) is None and store.remove("a", 4) is None


def test_a_failed_transaction_leaves_records_counters_and_clock_as_they_were():
    store = RecordStore(["a"], start=START)
    store.put("a", 1, {"id": 1, "name": "kept", "children": [10]})
    with pytest.raises(ValueError):
        with store.transaction():
            store.tables["a"][1]["name"] = "changed"
            store.tables["a"][1]["children"].append(11)
            store.put("a", store.next_number("a", 2), {"id": 2})
            store.tick()
            raise ValueError("refused")
    assert store.tables["a"] == {1: {"id": 1, "name": "kept", "children": [10]}}
    assert store.counters == {} and store.clock == START
    with store.transaction():
        store.put("a", 2, {"id": 2})
    assert set(store.tables["a"]) == {1, 2}


def test_snapshot_and_restore_undo_what_came_between():
    store = RecordStore(["a"], start=START)
    store.put("a", 1, {"id": 1})
    saved = store.snapshot()
    store.put("a", 2, {"id": 2})
    store.tables["a"][1]["id"] = 99
    store.tick()
    store.restore(saved)
    assert store.tables["a"] == {1: {"id": 1}} and store.clock == START

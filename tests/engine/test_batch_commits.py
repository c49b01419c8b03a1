"""How a run's batches reach the state store: one transaction per batch, carrying the
lock's heartbeat; batches with nothing but progress (a re-sync of unchanged records)
held back and stored together, also when the run fails after them."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from crm2erp.engine import sinks
from crm2erp.errors import FatalError
from tests.engine.conftest import T0, _account

KEYS = [f"A{n:03d}" for n in range(12)]


def _twelve_accounts_synced(systems, engine_for):
    """Four batches of three (the test project's batch size), synced once."""
    systems.add_accounts(*(_account(n, at=T0 + dt.timedelta(seconds=n)) for n in range(12)))
    engine = engine_for(systems)
    assert engine.run("accounts").counts["created"] == 12
    return engine


def _heartbeats(store, run) -> int:
    """How many times ``run()`` renews the flow's lock."""
    seen: list[str] = []

    def listen(conn, cursor, statement, *rest):
        seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", listen)
    try:
        run()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", listen)
    return sum(statement.lstrip().startswith("UPDATE locks") for statement in seen)


@pytest.mark.parametrize("mode", ["incremental", "full_refresh"])
def test_a_resync_of_unchanged_records_is_stored_once_not_per_batch(
        systems, engine_for, monkeypatch, mode):
    engine = _twelve_accounts_synced(systems, engine_for)
    store = engine.store
    mark = store.get_watermark("accounts", "accounts")
    results = []
    monkeypatch.setattr(sinks, "HOLD_SECONDS", 3600.0)
    # the heartbeat at the start, then the one commit of the four held batches
    assert _heartbeats(store, lambda: results.append(engine.run("accounts", mode=mode))) == 2
    monkeypatch.setattr(sinks, "HOLD_SECONDS", 0.0)
    # held no time: the heartbeat at the start and one commit per batch
    assert _heartbeats(store, lambda: results.append(engine.run("accounts", mode=mode))) == 5
    for result in results:
        stored = store.get_run(result.run_id)
        assert (stored.read, stored.unchanged, stored.status) == (12, 12, "succeeded")
        assert result.counts["unchanged"] == 12
    assert store.get_watermark("accounts", "accounts") == mark


def test_held_batches_are_stored_when_the_run_fails_after_them(
        systems, engine_for, monkeypatch):
    engine = _twelve_accounts_synced(systems, engine_for)
    monkeypatch.setattr(sinks, "HOLD_SECONDS", 3600.0)
    batches = []

    def progress(result):
        batches.append(result.run_id)
        if len(batches) == 2:
            raise RuntimeError("the machine went away")

    with pytest.raises(RuntimeError, match="went away"):
        engine.run("accounts", progress=progress)
    stored = engine.store.get_run(batches[0])
    assert stored.status == "failed"
    assert (stored.read, stored.unchanged) == (6, 6)   # the two held batches


def test_a_run_that_lost_its_lock_stores_its_batch_and_stops(systems, engine_for):
    systems.add_accounts(*(_account(n, at=T0 + dt.timedelta(seconds=n)) for n in range(12)))
    engine = engine_for(systems)
    store = engine.store
    batches = []

    def progress(result):
        batches.append(result.run_id)
        if len(batches) == 1:   # `crm2erp unlock` between the first and second batch
            (held,) = store.lock_holders("accounts")
            assert store.unlock(held)

    with pytest.raises(FatalError, match="lost its lock"):
        engine.run("accounts", progress=progress)
    # the second batch was written to the ERP: its commit stored it, then stopped the run
    known = store.canonical_ids("Account", "crm", KEYS)
    assert sorted(known) == KEYS[:6]
    assert sorted((r["crm_ref"], r["name"]) for r in systems.erp_rows()) == sorted(
        (known[key], f"Company {n}") for n, key in enumerate(KEYS[:6]))
    mark = store.get_watermark("accounts", "accounts")
    assert mark is not None and mark.key == KEYS[5]

"""Per-flow locks: one holder at a time, always released, and healing: a dead
holder on this host is taken over at once, one on another host after its lease."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from crm2erp.errors import ConfigError, FatalError, LockHeldError, RetriableError
from crm2erp.store import StateStore, locking
from crm2erp.store.tables import locks
from crm2erp.store.types import utcnow


@pytest.fixture
def stores(any_reused_store_url):
    """Two stores on the same database, like two processes."""
    first, second = StateStore.open(any_reused_store_url), StateStore.open(any_reused_store_url)
    yield first, second
    first.close()
    second.close()


def _holders(store: StateStore) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(locks.c.flow, locks.c.owner))]


def test_second_acquire_raises_naming_flow_and_owner(stores):
    first, second = stores
    with first.lock("accounts", owner="host-a:1"):
        with pytest.raises(LockHeldError) as caught:
            with second.lock("accounts", owner="host-b:2"):
                pytest.fail("two holders of one lock")
        message = str(caught.value)
        assert "'accounts'" in message and "host-a:1" in message and "since" in message
        assert isinstance(caught.value, RetriableError)
        assert caught.value.retry_after is not None and caught.value.retry_after > 0
        # another flow is independent
        with second.lock("contacts", owner="host-b:2"):
            assert sorted(_holders(first)) == [("accounts", "host-a:1"),
                                               ("contacts", "host-b:2")]
    assert _holders(first) == []


def test_expired_lock_is_taken_over(stores):
    first, second = stores
    # a holder that died: its lock expired a second ago
    with first.lock("accounts", owner="dead-run", ttl=dt.timedelta(seconds=-1)):
        with second.lock("accounts", owner="new-run") as owner:
            assert owner == "new-run"
            assert _holders(second) == [("accounts", "new-run")]
        # the new holder released its own lock; the dead run's release finds nothing
        assert _holders(first) == []
    assert _holders(first) == []


def test_old_holder_release_does_not_free_the_new_holders_lock(stores):
    first, second = stores
    with first.lock("accounts", owner="dead-run", ttl=dt.timedelta(seconds=-1)):
        outer = second.lock("accounts", owner="new-run")
        outer.__enter__()
    # dead-run's with-block has ended: new-run must still hold the lock
    assert _holders(first) == [("accounts", "new-run")]
    outer.__exit__(None, None, None)
    assert _holders(first) == []


def test_lock_released_when_block_raises(stores):
    first, second = stores
    with pytest.raises(ZeroDivisionError):
        with first.lock("accounts"):
            raise ZeroDivisionError("boom")
    assert _holders(first) == []
    with second.lock("accounts") as owner:
        assert _holders(second) == [("accounts", owner)]


def test_default_owners_are_unique(stores):
    first, _ = stores
    with first.lock("a") as one, first.lock("b") as two:
        assert one != two
        with pytest.raises(LockHeldError):
            with first.lock("a"):
                pass


def test_heartbeat_keeps_the_lock_and_detects_a_takeover(any_reused_store_url):
    store = StateStore.open(any_reused_store_url)
    try:
        with store.lock("beat", ttl=dt.timedelta(seconds=-1)) as owner:  # already expired
            store.extend_lock("beat", owner)                             # heartbeat renews it
            with pytest.raises(LockHeldError):
                with store.lock("beat", owner="intruder"):
                    pass
            with pytest.raises(FatalError, match="lost its lock"):
                store.extend_lock("beat", "someone-else")
    finally:
        store.close()


# -- healing: dead holders, leases, crashed runs (issue 10, finding 3) --------
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _dead_pid() -> int:
    """The pid of a process of ours that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def _run_status(store: StateStore, run_id: int) -> tuple[str, str | None]:
    run = store.get_run(run_id)
    return run.status, run.message


def test_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(stores, caplog):
    first, second = stores
    dead = f"{locking.this_host()}:{_dead_pid()}:deadbeef"
    # the killed run: its lock has hours of lease left, its run says running
    locking.acquire(first.engine, "accounts", dead, lease=dt.timedelta(hours=2))
    killed = first.start_run("accounts", "incremental", owner=dead)
    assert second.run_status(second.get_run(killed)) == "crashed"   # reported before
    assert _run_status(second, killed)[0] == "running"               # ...recorded after:
    with caplog.at_level(logging.WARNING, "crm2erp.store.locking"):
        with second.lock("accounts") as owner:
            assert _holders(second) == [("accounts", owner)]
    assert "no longer running" in caplog.text and dead in caplog.text
    status, message = _run_status(first, killed)
    assert status == "crashed" and "no longer running" in message
    assert first.get_run(killed).finished_at is not None


def test_lock_of_a_live_process_on_this_host_holds_even_past_its_lease(stores):
    first, second = stores
    with first.lock("accounts", ttl=dt.timedelta(seconds=-1)) as owner:  # lease over
        assert owner.startswith(f"{locking.this_host()}:")
        with pytest.raises(LockHeldError) as caught:
            with second.lock("accounts"):
                pytest.fail("a live holder's lock was taken over")
        message = str(caught.value)
        assert "still running" in message and "crm2erp unlock accounts" in message
        running = first.start_run("accounts", "incremental", owner=owner)
        assert second.run_status(second.get_run(running)) == "running"


def test_a_reused_pid_does_not_keep_a_dead_holders_lock(stores):
    first, second = stores
    # this process's pid, but the lock is older than this process: a pid reused
    reused = f"{locking.this_host()}:{os.getpid()}:0ld0ld00"
    long_ago = utcnow() - dt.timedelta(days=3650)
    locking.acquire(first.engine, "accounts", reused, lease=dt.timedelta(days=36500),
                    now=long_ago)
    with second.lock("accounts") as owner:
        assert _holders(second) == [("accounts", owner)]


def test_lock_of_another_host_expires_after_its_lease_unless_renewed(stores):
    first, second = stores
    other, lease = "erp-worker-7:4242:abcd0123", dt.timedelta(minutes=5)
    assert locking.acquire(first.engine, "accounts", other, lease, now=T0) == other
    run = first.start_run("accounts", "incremental", owner=other)
    later = T0 + dt.timedelta(minutes=4)
    with pytest.raises(LockHeldError, match="expires at 2026-03-01 12:05:00"):
        locking.acquire(second.engine, "accounts", "me:1:x", lease, now=later)
    assert locking.extend(first.engine, "accounts", other, lease, now=later)  # heartbeat
    with pytest.raises(LockHeldError, match="expires at 2026-03-01 12:09:00"):
        locking.acquire(second.engine, "accounts", "me:1:x", lease,
                        now=T0 + dt.timedelta(minutes=6))
    assert _run_status(second, run)[0] == "running"
    # no heartbeat for a full lease: the holder is gone, its run crashed
    taken = locking.acquire(second.engine, "accounts", "me:1:x", lease,
                            now=T0 + dt.timedelta(minutes=9, seconds=1))
    assert taken == "me:1:x" and _holders(second) == [("accounts", "me:1:x")]
    status, message = _run_status(second, run)
    assert status == "crashed" and "lease expired at 2026-03-01 12:09:00" in message
    # the old holder finds out at its next heartbeat
    with pytest.raises(FatalError, match="lost its lock"):
        first.extend_lock("accounts", other)


def test_a_holder_judged_gone_is_removed_once_and_not_after_it_renewed(stores):
    first, second = stores
    lease = dt.timedelta(minutes=5)
    locking.acquire(first.engine, "accounts", "far:1:a", lease, now=T0)
    seen = locking.holder(first.engine, "accounts")
    late = T0 + dt.timedelta(minutes=6)
    assert seen.gone(late) is not None
    locking.extend(first.engine, "accounts", "far:1:a", lease, now=late)  # renewed meanwhile
    assert not locking._remove(second.engine, seen, "test", late)
    assert _holders(first) == [("accounts", "far:1:a")]
    seen = locking.holder(first.engine, "accounts")
    # two processes that both judged it gone: exactly one removes it
    assert locking._remove(first.engine, seen, "test", late + lease * 2)
    assert not locking._remove(second.engine, seen, "test", late + lease * 2)


def test_lease_comes_from_the_environment(stores, monkeypatch):
    first, _ = stores
    monkeypatch.setenv(locking.ENV_LEASE, "90s")
    with first.lock("accounts", owner="a:1:b"):
        (held,) = first.lock_holders("accounts")
        assert held.expires_at - held.acquired_at == dt.timedelta(seconds=90)
    monkeypatch.delenv(locking.ENV_LEASE)
    assert locking.lease_from_env() == dt.timedelta(minutes=10)
    for bad in ("soon", "0s"):
        monkeypatch.setenv(locking.ENV_LEASE, bad)
        with pytest.raises(ConfigError, match=locking.ENV_LEASE):
            with first.lock("accounts"):
                pass
    assert _holders(first) == []


def test_unlock_releases_any_holder_and_its_run_crashes(stores):
    first, second = stores
    with first.lock("accounts") as owner, first.lock("accounts#p2of4") as part:
        run = first.start_run("accounts", "incremental", owner=owner)
        locking.acquire(first.engine, "accountsx", "x:1:y")   # another flow: untouched
        held = second.lock_holders("accounts")
        assert [(h.flow, h.owner) for h in held] == [("accounts", owner),
                                                     ("accounts#p2of4", part)]
        assert all(second.unlock(h) for h in held)
        assert not second.unlock(held[0])                    # already released
        assert _holders(second) == [("accountsx", "x:1:y")]
        status, message = _run_status(second, run)
        assert status == "crashed" and "released by crm2erp unlock" in message
        with pytest.raises(FatalError, match="lost its lock"):
            first.extend_lock("accounts", owner)


def test_a_running_run_from_before_owners_were_recorded(stores):
    first, second = stores
    legacy = first.start_run("accounts", "incremental")            # no owner
    with first.lock("accounts#p1of2"):
        assert second.run_status(second.get_run(legacy)) == "running"
    assert second.run_status(second.get_run(legacy)) == "crashed"

"""Per-flow locks: one holder at a time, expired locks taken over, always released."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from crm2erp.errors import LockHeldError, RetriableError
from crm2erp.store import StateStore
from crm2erp.store.tables import locks


@pytest.fixture
def stores(any_db_url):
    """Two stores on the same database, like two processes."""
    first, second = StateStore.open(any_db_url), StateStore.open(any_db_url)
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


def test_heartbeat_keeps_the_lock_and_detects_a_takeover(any_db_url):
    from crm2erp.errors import FatalError

    store = StateStore.open(any_db_url)
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

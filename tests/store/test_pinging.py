"""Pooled connections are pinged only after sitting idle (crm2erp/store/pinging.py),
on a real PostgreSQL whose server drops the pooled connection."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm2erp.store import StateStore, pinging


def _backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()


def _drop_on_server(url: str, pid: int) -> None:
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    admin.dispose()


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(pg_url):
    engine = pinging.ping_when_idle(sa.create_engine(pg_url), idle_seconds=0)
    try:
        first = _backend_pid(engine)
        _drop_on_server(pg_url, first)
        with engine.connect() as conn:   # pinged, found dead, replaced: no error
            assert conn.execute(sa.text("SELECT 41 + 1")).scalar_one() == 42
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != first
    finally:
        engine.dispose()


def test_a_connection_returned_moments_ago_is_not_pinged(pg_url):
    """The price of skipping the ping: a connection dropped within the idle time fails
    its statement once (a retriable disconnect), and the pool replaces it after."""
    engine = pinging.ping_when_idle(sa.create_engine(pg_url), idle_seconds=3600)
    try:
        _drop_on_server(pg_url, _backend_pid(engine))
        with pytest.raises(sa.exc.OperationalError) as failed:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        assert failed.value.connection_invalidated
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_the_state_store_survives_a_server_that_dropped_its_idle_connection(
        pg_store_url, monkeypatch):
    monkeypatch.setattr(pinging, "IDLE_BEFORE_PING", 0.0)
    store = StateStore.open(pg_store_url)
    try:
        run_id = store.start_run("accounts", "incremental")
        _drop_on_server(pg_store_url, _backend_pid(store.engine))
        assert store.get_run(run_id).flow == "accounts"
    finally:
        store.close()

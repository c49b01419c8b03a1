"""Runs, URLs and timestamps."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from crm2erp.errors import ConfigError, FatalError
from crm2erp.store import ENV_URL, StateStore


@pytest.fixture
def store(any_reused_store_url):
    store = StateStore.open(any_reused_store_url)
    yield store
    store.close()


def test_run_lifecycle_with_utc_timestamps(store):
    before = dt.datetime.now(dt.UTC)
    run_id = store.start_run("accounts", "incremental")
    run = store.get_run(run_id)
    assert (run.flow, run.mode, run.status, run.finished_at, run.duration) == (
        "accounts", "incremental", "running", None, None)
    assert run.started_at.tzinfo == dt.UTC
    assert before - dt.timedelta(seconds=1) <= run.started_at

    from crm2erp.redact import register_secret

    register_secret("s3cret-of-connections-yaml")   # only our own secrets are masked
    store.finish_run(run_id, "partial", "2 records failed; login s3cret-of-connections-yaml")
    run = store.get_run(run_id)
    assert run.status == "partial"
    assert run.finished_at.tzinfo == dt.UTC and run.finished_at >= run.started_at
    assert "s3cret" not in run.message and "2 records failed" in run.message


def test_list_runs_newest_first(store):
    ids = [store.start_run(flow, "full_refresh") for flow in ("a", "b", "a", "a")]
    assert [r.id for r in store.list_runs()] == ids[::-1]
    assert [r.id for r in store.list_runs("a", limit=2)] == [ids[3], ids[2]]
    assert store.list_runs("nobody") == []


def test_bad_mode_status_and_run_id_are_clear_errors(store):
    with pytest.raises(ValueError, match="run mode 'sometimes'"):
        store.start_run("accounts", "sometimes")
    run_id = store.start_run("accounts", "dry_run")
    with pytest.raises(ValueError, match="run status 'done'"):
        store.finish_run(run_id, "done")
    with pytest.raises(ConfigError, match="no run #424242"):
        store.get_run(424242)
    with pytest.raises(ConfigError, match="no run #424242"):
        store.finish_run(424242, "failed")


def test_url_hides_the_password():
    # no connection is made: the url property only renders the engine's URL
    store = StateStore(sa.create_engine("postgresql+psycopg://bot:pw-hidden@db.example/state"))
    assert store.url == "postgresql+psycopg://bot:***@db.example/state"
    assert "pw-hidden" not in repr(store)


def test_url_from_environment_then_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_URL, f"sqlite:///{tmp_path / 'from-env.db'}")
    with StateStore.open() as store:
        assert store.url.endswith("from-env.db")
    monkeypatch.delenv(ENV_URL)
    with StateStore.open() as store:
        assert store.url == "sqlite:///crm2erp-state.db"
    assert (tmp_path / "crm2erp-state.db").exists()


@pytest.mark.postgres   # as tests/conftest.py marks a test of pg_url
def test_postgres_session_time_zone_does_not_leak(pg_reused_store_url):
    """Even with a non-UTC session, datetimes come back as UTC."""
    url = sa.engine.make_url(pg_reused_store_url).update_query_dict(
        {"options": "-c timezone=Asia/Tokyo"})
    with StateStore.open(url.render_as_string(hide_password=False)) as store:
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SHOW timezone")).scalar() == "Asia/Tokyo"
        now = dt.datetime.now(dt.UTC)
        started = store.get_run(store.start_run("accounts", "incremental")).started_at
        assert started.tzinfo == dt.UTC
        assert abs(started - now) < dt.timedelta(hours=1)


def test_bad_urls_are_config_errors():
    with pytest.raises(ConfigError, match="not a valid database URL"):
        StateStore.open("not a url")
    with pytest.raises(ConfigError, match="no database driver"):
        StateStore.open("postgresql+nosuchdriver://u:p@localhost/db")


def test_unreachable_database_is_fatal_and_hides_the_password():
    with pytest.raises(FatalError) as caught:
        StateStore.open("postgresql+psycopg://u:topsecretpw@127.0.0.1:1/db")
    assert "topsecretpw" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)

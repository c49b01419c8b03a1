"""Hooks, provider registration, run-time credentials and failure semantics."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import types
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm2erp.demo.sample import sample_crm_rows
from crm2erp.demo.systems import create_systems
from crm2erp.errors import ConfigError, FatalError, LockHeldError, RetriableError
from crm2erp.mapping import load_flow, load_project
from crm2erp.mappings import pack_dir
from crm2erp.redact import redact
from crm2erp.store import StateStore
from crm2erp.testing.plugins import install_plugin


def _connection(**fields):
    from airflow.sdk import Connection

    extra = fields.pop("extra", None)
    return Connection(conn_id="t", extra=json.dumps(extra) if extra else None, **fields)


# -- provider -------------------------------------------------------------
def test_provider_registers_the_connection_types_with_their_hooks(airflow):
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    runtime = ProvidersManagerTaskRuntime()  # what a task uses to find a hook by type
    hooks = {k: v.hook_class_name for k, v in runtime.hooks.items()
             if k.startswith("crm2erp") and v}
    assert hooks == {
        "crm2erp": "crm2erp.orchestration.hooks.Crm2ErpHook",
        "crm2erp_sql": "crm2erp.orchestration.hooks.SqlConnectionHook",
        "crm2erp_api": "crm2erp.orchestration.hooks.ApiConnectionHook",
        "crm2erp_salesforce": "crm2erp.orchestration.hooks.SalesforceConnectionHook",
    }
    manager = ProvidersManager()  # what the UI uses for the connection form
    assert "crm2erp" in manager.providers
    assert manager.field_behaviours["crm2erp_sql"]["relabeling"] == {"schema": "Database"}


# -- hooks ----------------------------------------------------------------
def test_sql_hook_builds_the_url_and_hides_the_password(airflow):
    from crm2erp.orchestration.hooks import SqlConnectionHook

    conn = _connection(conn_type="crm2erp_sql", host="db.example.com", port=5433,
                       login="sync", password="p@ss:w/rd-93", schema="erp",
                       extra={"drivername": "mysql+pymysql", "timezone": "Europe/Berlin"})
    base = {"url": "${UNSET}", "streams": {"customers": {"table": "c", "key": "k"}}}
    settings = SqlConnectionHook().settings("sql", base, conn)
    url = sa.engine.make_url(settings["url"])
    assert (url.drivername, url.host, url.port, url.username, url.password, url.database) == (
        "mysql+pymysql", "db.example.com", 5433, "sync", "p@ss:w/rd-93", "erp")
    assert settings["timezone"] == "Europe/Berlin" and settings["streams"] == base["streams"]
    assert "p@ss:w/rd-93" not in redact(f"failed to connect with p@ss:w/rd-93 to {url}")


def test_api_hook_fills_the_auth_block_of_the_connector(airflow):
    from crm2erp.connectors import create_connector
    from crm2erp.orchestration.hooks import hook_for

    conn = _connection(conn_type="crm2erp_salesforce", host="acme.my.salesforce.com",
                       login="client-id-1", password="client-secret-xyz",
                       extra={"api_version": "60.0"})
    hook = hook_for(conn.conn_type, "salesforce")()
    settings = hook.settings("salesforce", {"page_size": 500}, conn)
    assert settings["instance_url"] == "https://acme.my.salesforce.com"
    assert settings["auth"] == {"type": "client_credentials", "client_id": "client-id-1",
                                "client_secret": "client-secret-xyz"}
    connector = create_connector("salesforce", settings)  # validates, no I/O
    assert connector.config.api_version == "60.0" and connector.config.page_size == 500
    assert "client-secret-xyz" not in redact("token request with client-secret-xyz")

    generic = hook_for("generic", "hubspot")()  # unknown Airflow type: by connector type
    settings = generic.settings("hubspot", {"auth": {"type": "bearer"}},
                                _connection(conn_type="generic", password="tok-123456"))
    assert settings["auth"] == {"type": "bearer", "token": "tok-123456"}


# -- run-time project -----------------------------------------------------
def _airflow_project(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(pack_dir("demo"), root)
    text = (root / "connections.yaml").read_text()
    text = text.replace("    url: sqlite:///${CRM2ERP_DEMO_DIR}/erp.db",
                        "    airflow_conn_id: demo_erp\n    url: ${DEMO_ERP_URL}")
    assert "airflow_conn_id" in text
    (root / "connections.yaml").write_text(text)
    return root


def test_airflow_conn_id_replaces_env_values_under_airflow_only(tmp_path, monkeypatch):
    from crm2erp.orchestration.runtime import load_runtime_project

    root = _airflow_project(tmp_path)
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))
    monkeypatch.delenv("DEMO_ERP_URL", raising=False)
    asked = []

    def fetch(conn_id, conn_type, settings):
        asked.append((conn_id, conn_type))
        return {**settings, "url": f"sqlite:///{tmp_path}/from-airflow.db"}

    project = load_runtime_project(root, "demo_accounts", fetch)
    assert asked == [("demo_erp", "sql")]
    assert project.connections["erp"].settings["url"].endswith("from-airflow.db")
    assert project.connections["erp"].airflow_conn_id == "demo_erp"

    # the same project outside Airflow: the key is ignored, ${DEMO_ERP_URL} is used
    monkeypatch.setenv("DEMO_ERP_URL", "sqlite:///plain.db")
    plain = load_project(root)
    assert plain.connections["erp"].settings["url"] == "sqlite:///plain.db"
    assert "airflow_conn_id" not in plain.connections["erp"].settings


def test_a_missing_variable_is_a_config_error_naming_it(tmp_path, monkeypatch):
    from crm2erp.orchestration.runtime import load_runtime_project

    root = _airflow_project(tmp_path)
    monkeypatch.delenv("CRM2ERP_DEMO_DIR", raising=False)
    with pytest.raises(ConfigError, match=r"connection 'crm' .*CRM2ERP_DEMO_DIR"):
        load_runtime_project(root, "demo_accounts", lambda *a: a[2])


# -- schedules ------------------------------------------------------------
def test_schedule_forms(airflow, tmp_path):
    from crm2erp.orchestration.factory import dag_schedule

    flow = load_flow(pack_dir("demo") / "orders.flow.yaml")
    assert dag_schedule(flow) == "@hourly"
    assert dag_schedule(flow.model_copy(update={"schedule": "30m"})) == dt.timedelta(minutes=30)
    assert dag_schedule(flow.model_copy(update={"schedule": None, "depends_on": []})) is None
    parents = dag_schedule(flow.model_copy(update={"schedule": None}))
    assert [a.uri for a in parents] == ["crm2erp://flow/demo_accounts"]


def test_backfill_runs_re_read_from_their_interval_start(airflow):
    from airflow.sdk.api.datamodels._generated import DagRunType

    from crm2erp.orchestration.factory import _mode

    start = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    backfill = types.SimpleNamespace(run_type=DagRunType.BACKFILL)
    manual = types.SimpleNamespace(run_type=DagRunType.MANUAL)
    assert _mode({"mode": "incremental"}, backfill, start) == ("since", start.isoformat())
    assert _mode({"mode": "incremental"}, manual, start) == ("incremental", None)
    assert _mode({"mode": "full_refresh"}, backfill, start) == ("full_refresh", None)
    assert _mode({"mode": "since", "since": "2024-01-01"}, manual, None) == (
        "since", "2024-01-01")


# -- failure semantics ----------------------------------------------------
def test_errors_map_onto_retry_or_fail_now(airflow):
    from airflow.sdk.exceptions import AirflowFailException

    from crm2erp.orchestration.tasks import failure_semantics

    for error in (ConfigError("bad yaml"), FatalError("auth refused")):
        with pytest.raises(AirflowFailException, match=str(error)):
            with failure_semantics("flow x"):
                raise error
    with pytest.raises(RetriableError):
        with failure_semantics("flow x"):
            raise RetriableError("HTTP 503")


@pytest.fixture
def demo_env(tmp_path, monkeypatch):
    crm, erp = (f"sqlite:///{tmp_path / n}" for n in ("crm.db", "erp.db"))
    create_systems(crm, erp, sample_crm_rows(accounts=12))
    state = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))
    monkeypatch.setenv("CRM2ERP_STATE_URL", state)
    return state


def test_a_held_lock_is_retried_not_failed(airflow, demo_env):
    from crm2erp.orchestration import tasks

    with StateStore.open(demo_env) as store, store.lock("demo_accounts"):
        with pytest.raises(LockHeldError):
            tasks.sync(pack_dir("demo"), "demo_accounts")


GATE_PLUGIN = """
from crm2erp.errors import FatalError


class QualityBreach(FatalError):
    \"\"\"What a quality gate raises when a threshold is breached.\"\"\"


class Gate:
    name = "gate"

    def start(self, ctx):
        pass

    def process(self, items, ctx):
        raise QualityBreach("quality gate: 40% of accounts fail 'email valid' (max 5%)")

    def finish(self, ctx):
        pass


def factory(flow, store):
    return Gate()
"""


def test_a_quality_breach_fails_the_task_and_dead_letters_do_not(airflow, demo_env,
                                                                  monkeypatch, tmp_path):
    """A stage registered by entry point (crm2erp.stages) stops the run."""
    from airflow.sdk.exceptions import AirflowFailException

    from crm2erp.orchestration import tasks

    outcome = tasks.sync(pack_dir("demo"), "demo_accounts")  # sample has invalid accounts
    assert outcome["status"] == "partial" and outcome["new_dead_letters"] > 0
    summary = tasks.report("demo_accounts", [outcome])
    assert summary["open_dead_letters"] == outcome["new_dead_letters"]
    assert summary["counts"]["read"] == 12

    install_plugin(tmp_path / "plugin", "crm2erp_test_gate", GATE_PLUGIN,
                   {"crm2erp.stages": {"gate": "factory"}}, monkeypatch)
    with pytest.raises(AirflowFailException, match="QualityBreach: quality gate"):
        tasks.sync(pack_dir("demo"), "demo_accounts", mode="full_refresh")
    with StateStore.open(demo_env) as store:
        assert store.list_runs("demo_accounts", limit=1)[0].status == "failed"


# -- the state store under Airflow ----------------------------------------
def test_a_task_without_a_state_store_fails_at_once_and_makes_no_sqlite_file(
        airflow, demo_env, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from crm2erp.orchestration import tasks

    monkeypatch.delenv("CRM2ERP_STATE_URL")
    monkeypatch.delenv("AIRFLOW_CONN_CRM2ERP_STATE", raising=False)
    worker_dir = tmp_path / "worker"
    worker_dir.mkdir()
    monkeypatch.chdir(worker_dir)
    with pytest.raises(AirflowFailException,
                       match=r"CRM2ERP_STATE_URL is not set and the Airflow Connection "
                             r"'crm2erp_state' cannot be read"):
        tasks.sync(pack_dir("demo"), "demo_accounts")
    with pytest.raises(AirflowFailException, match="crm2erp_state"):
        tasks.report("demo_accounts", [])
    assert list(worker_dir.iterdir()) == []  # no crm2erp-state.db in the worker's folder


def test_the_state_store_comes_from_the_crm2erp_state_connection(airflow, demo_env, pg_url,
                                                                 monkeypatch):
    from crm2erp.orchestration import tasks

    url = sa.engine.make_url(pg_url)
    monkeypatch.delenv("CRM2ERP_STATE_URL")
    monkeypatch.setenv("AIRFLOW_CONN_CRM2ERP_STATE", json.dumps({
        "conn_type": "postgres", "host": url.host, "port": url.port or 5432,
        "login": url.username, "schema": url.database}))
    outcome = tasks.sync(pack_dir("demo"), "demo_accounts")
    summary = tasks.report("demo_accounts", [outcome])
    with StateStore.open(pg_url) as store:  # read back from the Connection's database
        run = store.get_run(outcome["run_id"])
        assert run.flow == "demo_accounts" and run.counts["read"] == 12
        assert store.count_dead_letters(flow="demo_accounts") == outcome["new_dead_letters"]
    assert summary["run_ids"] == [outcome["run_id"]]
    assert not Path(demo_env.removeprefix("sqlite:///")).exists()  # the variable's is unused


def test_a_state_connection_of_another_id(airflow, demo_env, tmp_path, monkeypatch):
    from crm2erp.orchestration.hooks import state_url

    other = f"sqlite:///{tmp_path / 'other-state.db'}"
    monkeypatch.delenv("CRM2ERP_STATE_URL")
    monkeypatch.setenv("CRM2ERP_STATE_CONN_ID", "ops_state")
    monkeypatch.setenv("AIRFLOW_CONN_OPS_STATE", json.dumps(
        {"conn_type": "crm2erp_sql", "extra": {"url": other}}))
    assert state_url() == other
    monkeypatch.setenv("CRM2ERP_STATE_URL", demo_env)  # the variable wins when set
    assert state_url() == demo_env


def test_a_broken_file_of_another_flow_does_not_stop_a_task(airflow, demo_env, tmp_path):
    """Parse time keeps the DAGs of the other flows; run time lets them run too."""
    from airflow.sdk.exceptions import AirflowFailException

    from crm2erp.orchestration import tasks

    root = tmp_path / "p"
    shutil.copytree(pack_dir("demo"), root)
    (root / "contacts.flow.yaml").write_text("flow: demo_contacts\nentity: [\n")
    assert tasks.check_connections(root, "demo_accounts") == ["crm", "erp"]
    outcome = tasks.sync(root, "demo_accounts")
    with StateStore.open(demo_env) as store:
        run = store.get_run(outcome["run_id"])
        assert run.flow == "demo_accounts" and run.counts["read"] == 12
    with pytest.raises(AirflowFailException,
                       match=r"contacts\.flow\.yaml:3:1: YAML syntax error"):
        tasks.sync(root, "demo_contacts")

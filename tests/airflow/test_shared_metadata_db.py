"""The state store shares one PostgreSQL database with Airflow's metadata.

Airflow keeps its Alembic revision in ``alembic_version``; the state store
keeps its own in ``crm2erp_alembic_version``, so both migrate and run side by
side: Airflow is migrated first, a flow then runs with the state store taken
from the Airflow Connection ``crm2erp_state`` (the same database), and
afterwards Airflow's CLI, its migrations and ``crm2erp status`` all still work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from crm2erp.demo.sample import sample_crm_rows
from crm2erp.demo.systems import create_systems
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore, migrate
from crm2erp.store.migrations import LEGACY_VERSION_TABLE, VERSION_TABLE

pytestmark = pytest.mark.postgres


def _scalar(url: str, sql: str):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar_one()
    finally:
        engine.dispose()


def test_state_store_and_airflow_metadata_in_one_postgres_database(airflow_bare, tmp_path,
                                                                  pg_url, monkeypatch):
    monkeypatch.delenv("CRM2ERP_STATE_URL", raising=False)
    crm, erp = (f"sqlite:///{tmp_path / n}" for n in ("crm.db", "erp.db"))
    create_systems(crm, erp, sample_crm_rows(accounts=30))
    url = sa.engine.make_url(pg_url)
    home = tmp_path / "airflow_home"
    home.mkdir()
    env = {"AIRFLOW_HOME": str(home),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg_url,
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": pg_url,
           # the demo pack as the project: Airflow parses the demo's DAGs, not every pack's
           "CRM2ERP_PROJECT": str(pack_dir("demo")),
           "CRM2ERP_DEMO_DIR": str(tmp_path),
           "AIRFLOW_CONN_CRM2ERP_STATE": json.dumps({
               "conn_type": "postgres", "host": url.host, "port": url.port or 5432,
               "login": url.username, "schema": url.database})}

    airflow_bare.run("db", "migrate", env=env)
    airflow_revision = _scalar(pg_url, f"SELECT version_num FROM {LEGACY_VERSION_TABLE}")

    with StateStore.open(pg_url) as store:  # the state store migrated into Airflow's DB
        assert migrate.current_revision(store.engine) == migrate.head_revision()
    assert _scalar(pg_url, f"SELECT version_num FROM {VERSION_TABLE}") == \
        migrate.head_revision()
    assert _scalar(pg_url, f"SELECT version_num FROM {LEGACY_VERSION_TABLE}") == \
        airflow_revision

    output = airflow_bare.dags_test("demo_accounts", env=env)
    assert "state store from Airflow Connection crm2erp_state" in output

    # Airflow still works on its database: migrations are at head, the DAGs list
    airflow_bare.run("db", "check-migrations", "-t", "0", env=env)
    airflow_bare.run("db", "migrate", env=env)  # a no-op beside crm2erp's tables
    dags = airflow_bare.json(airflow_bare.run("dags", "list", "-o", "json", env=env))
    assert "demo_accounts" in {d["dag_id"] for d in dags}
    assert _scalar(pg_url, "SELECT count(*) FROM dag_run WHERE dag_id = 'demo_accounts' "
                           "AND state = 'success'") == 1

    # ... and the state store holds the run the DAG made
    with StateStore.open(pg_url) as store:
        runs = store.list_runs("demo_accounts")
        assert len(runs) == 1 and runs[0].status in ("succeeded", "partial")
        assert runs[0].counts["read"] == 30
        assert runs[0].created == _scalar(erp, "SELECT count(*) FROM customers")
    status = subprocess.run(
        [sys.executable, "-m", "crm2erp", "--project", str(pack_dir("demo")),
         "--state", pg_url, "status"],
        env={**os.environ, **env, "COLUMNS": "200"},
        capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    line = next(ln for ln in status.stdout.splitlines() if "demo_accounts" in ln)
    assert runs[0].status in line and str(runs[0].id) in status.stdout

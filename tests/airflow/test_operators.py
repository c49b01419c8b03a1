"""crm2erp in a user's own DAG: the example DAG file of docs/airflow.md, run
with ``airflow dags test`` against the demo's SQLite CRM and ERP; the ERP's
tables are read back afterwards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm2erp.demo import create_systems, write_project
from crm2erp.demo.sample import sample_crm_rows
from crm2erp.errors import ConfigError
from crm2erp.store import StateStore

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "my_crm_pipeline.py"


def _rows(url, query):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).all()
    finally:
        engine.dispose()


def test_example_dag_with_operator_and_task_group_runs(airflow, tmp_path):
    crm, erp, state = (f"sqlite:///{tmp_path / n}" for n in ("crm.db", "erp.db", "state.db"))
    create_systems(crm, erp, sample_crm_rows(accounts=25))
    project = write_project(tmp_path, tmp_path / "state.db", fresh=True)
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(EXAMPLE, dags)
    # the user's DAGs folder as the deployment's DAG bundle (the default bundle's name,
    # the folder in place of [core] dags_folder): read when the command runs, so the
    # session's fork server runs it, with no server of the test's own
    bundle = {"name": "dags-folder",
              "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
              "kwargs": {"path": str(dags)}}
    env = {"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps([bundle]),
           "CRM2ERP_PROJECT": str(project), "CRM2ERP_STATE_URL": state}
    output = airflow.dags_test("my_crm_pipeline", env=env)
    for task_id in ("demo_accounts.check_connections", "demo_accounts.sync",
                    "demo_accounts.report", "sync_orders"):
        assert f"task_id={task_id}," in output or f"task_id='{task_id}'" in output, task_id

    with StateStore.open(state) as store:
        runs = {r.flow: r for r in store.list_runs(limit=10)}
    assert set(runs) == {"demo_accounts", "demo_orders"}
    # every customer the run created is in the ERP, named as in the CRM, and its ERP
    # number was written back to the CRM account
    customers = dict(_rows(erp, "SELECT id, name FROM customers"))
    assert len(customers) == runs["demo_accounts"].created > 0
    written_back = dict(_rows(crm, "SELECT erp_customer_no, company_name FROM accounts "
                                   "WHERE erp_customer_no IS NOT NULL"))
    assert {int(k): " ".join(v.split()) for k, v in written_back.items()} == customers
    orders = _rows(erp, "SELECT crm_ref FROM sales_orders")
    assert len(orders) == runs["demo_orders"].created > 0


def test_an_unknown_flow_names_the_project_folder(tmp_path):
    from crm2erp.orchestration.operators import find_flow

    project = write_project(tmp_path, tmp_path / "state.db", fresh=True)
    with pytest.raises(ConfigError, match=f"no valid, enabled crm2erp flow 'nope' in {project}"):
        find_flow("nope", project)

"""Each shipped demo flow runs to success with ``airflow dags test``, in the
order the demo runs them, against the demo's sample systems."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from crm2erp.demo import DEMO_FLOWS
from crm2erp.demo.sample import sample_crm_rows
from crm2erp.demo.systems import bill_new_orders, create_systems
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore


def _count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


def test_demo_flows_run_to_success_with_airflow_dags_test(airflow, tmp_path):
    crm, erp, state = (f"sqlite:///{tmp_path / n}" for n in ("crm.db", "erp.db", "state.db"))
    create_systems(crm, erp, sample_crm_rows(accounts=40))
    # the demo pack as the project: each `dags test` parses (and writes to the metadata
    # database) the demo's DAGs, not every shipped pack's (test_dags.py covers those)
    env = {"CRM2ERP_PROJECT": str(pack_dir("demo")), "CRM2ERP_DEMO_DIR": str(tmp_path),
           "CRM2ERP_STATE_URL": state}

    for name in DEMO_FLOWS:
        if name == "demo_invoices":
            assert bill_new_orders(erp, dt.date.today()) > 0  # the ERP's own billing run
        done = airflow.run("dags", "test", name, env=env)
        output = done.stdout + done.stderr
        assert f"DagRun Finished: dag_id={name}," in output, output[-5000:]
        assert "state=success" in output.split("DagRun Finished")[-1], output[-5000:]

    assert _count(erp, "customers") > 0 and _count(erp, "sales_orders") > 0
    assert _count(crm, "erp_invoices") == _count(erp, "invoices")
    with StateStore.open(state) as store:
        runs = {r.flow: r for r in store.list_runs(limit=50)}
        assert set(runs) == set(DEMO_FLOWS)
        assert all(r.status in ("succeeded", "partial") for r in runs.values())
        assert runs["demo_accounts"].created == _count(erp, "customers")
        assert store.count_dead_letters(flow="demo_accounts") == runs["demo_accounts"].failed

    # each report produced its flow's asset, with the run's counts as the event's extra
    meta = sa.create_engine(f"sqlite:///{airflow.home / 'airflow.db'}")
    try:
        with meta.connect() as conn:
            events = conn.execute(sa.text(
                "SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id"
            )).all()
    finally:
        meta.dispose()
    produced = {uri: json.loads(extra) if isinstance(extra, str) else extra
                for uri, extra in events}
    assert {f"crm2erp://flow/{n}" for n in DEMO_FLOWS} <= set(produced)
    orders = produced["crm2erp://flow/demo_orders"]
    assert orders["counts"]["created"] == _count(erp, "sales_orders")

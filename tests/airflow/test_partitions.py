"""A partitioned flow: two slices in two worker processes, one shared PostgreSQL
state store, a PostgreSQL target reached through an Airflow Connection.
Every record must land exactly once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import sqlalchemy as sa

from crm2erp.demo.sample import sample_crm_rows
from crm2erp.demo.systems import create_systems
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore

SECRET = "Pw-never-in-logs-7391"

CONNECTIONS = """\
connections:
  crm:
    type: sql
    url: sqlite:///${PART_DIR}/crm.db
    streams:
      accounts: {table: accounts, key: id, cursor: updated_at}
  erp:
    type: sql
    airflow_conn_id: part_erp   # under Airflow the URL comes from this Connection
    url: ${PART_ERP_URL}        # ... so this variable is not set for the workers
    streams:
      customers: {table: customers, key: crm_ref, id_column: id}
"""

FLOW = """\
flow: part_accounts
description: CRM accounts become ERP customers, in two slices.
entity: Account
source: {connection: crm, stream: accounts, mapping: maps/crm_account.in.map.yaml}
target: {connection: erp, stream: customers, mapping: maps/erp_customer.out.map.yaml}
incremental: {cursor: updated_at, lookback: 5m, batch_size: 25}
partitions: {count: 2}
tags: [test]
"""


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "maps").mkdir(parents=True)
    for name in ("crm_account.in.map.yaml", "erp_customer.out.map.yaml"):
        shutil.copy(pack_dir("demo") / "maps" / name, root / "maps" / name)
    (root / "connections.yaml").write_text(CONNECTIONS)
    (root / "accounts.flow.yaml").write_text(FLOW)
    return root


def _airflow_connection(pg_url: str) -> str:
    url = sa.engine.make_url(pg_url)
    return json.dumps({"conn_type": "crm2erp_sql", "host": url.host, "port": url.port or 5432,
                       "login": url.username, "password": SECRET, "schema": url.database,
                       "extra": {"drivername": "postgresql+psycopg"}})


def test_two_slices_in_parallel_load_every_record_once(airflow, tmp_path, pg_url):
    root = _project(tmp_path)
    rows = sample_crm_rows(accounts=80)
    create_systems(f"sqlite:///{tmp_path / 'crm.db'}", pg_url, rows)
    env = {"CRM2ERP_PROJECT": str(root), "PART_DIR": str(tmp_path),
           "CRM2ERP_STATE_URL": pg_url, "AIRFLOW_CONN_PART_ERP": _airflow_connection(pg_url)}

    listed = airflow.json(airflow.run("dags", "list", "--local", "-o", "json", env=env))
    assert [d["dag_id"] for d in listed] == ["part_accounts"]
    airflow.run("tasks", "test", "part_accounts", "check_connections", "2024-06-01", env=env)

    # two workers, each running one mapped `sync` task instance (map index = slice)
    # in a process of its own, at the same time; each `tasks test` makes its own
    # throw-away DAG run, hence two logical dates
    workers = airflow.run_together(*[
        ("tasks", "test", "part_accounts", "sync", f"2024-06-0{i + 1}", "--map-index", str(i))
        for i in (0, 1)], env=env)
    for worker in workers:
        output = worker.stdout + worker.stderr
        airflow.assert_task_succeeded(output)
        assert SECRET not in output
        assert "from Airflow Connection part_erp" in output

    accounts = [r["id"] for r in rows["accounts"]]
    erp = sa.create_engine(pg_url)
    try:
        with erp.connect() as conn:
            refs = conn.execute(sa.text("SELECT crm_ref FROM customers")).scalars().all()
    finally:
        erp.dispose()
    assert len(refs) == len(set(refs)), "a record was loaded twice"

    with StateStore.open(pg_url) as store:
        runs = [r for r in store.list_runs("part_accounts", limit=10)]
        failed = store.count_dead_letters(flow="part_accounts", status="open")
        crm_xref = store.xref_count("Account", "crm")
        erp_xref = store.xref_count("Account", "erp")
        read = sum(r.read for r in runs)
        loaded = store.xref_entries("Account", "crm", accounts)
    assert len(runs) == 2 and {r.status for r in runs} <= {"succeeded", "partial"}
    assert read == len(accounts), "each slice must read only its own records"
    assert len(refs) + failed == len(accounts), "no record may be lost"
    assert erp_xref == len(refs) and crm_xref == len(refs)
    # the ERP's crm_ref is the canonical id: exactly the loaded CRM accounts' ids
    assert sorted(refs) == sorted(e.canonical_id for e in loaded.values())

    # the whole DAG: check -> two mapped syncs -> report, which sums both slices' runs
    done = airflow.run("dags", "test", "part_accounts", env=env)
    output = done.stdout + done.stderr
    assert "state=success" in output.split("DagRun Finished")[-1], output[-5000:]
    assert "flow part_accounts: 2 run(s) succeeded" in output
    assert SECRET not in output

"""A partitioned flow run by a real Airflow deployment: api-server (its Execution
API), scheduler and dag-processor as separate processes, LocalExecutor with two
worker slots, a PostgreSQL metadata database and a shared PostgreSQL state store.

The DAG run is triggered like an operator would; the scheduler then runs the
two mapped ``sync`` slices at the same time, each worker process reporting to
the api-server's execution API. Every CRM record must land exactly once in the
ERP and in the id cross-reference.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from crm2erp.demo.sample import INVALID_ACCOUNTS, sample_crm_rows
from crm2erp.demo.systems import create_systems
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore

pytestmark = pytest.mark.slow

FLOW_NAME = "lx_accounts"
RUN_ID = "lx_manual_1"
# a bound for a failure message, not a timed assertion: a deployment on a loaded
# 2-core machine took more than 180 s to queue and run the DAG's four tasks
WAIT_SECONDS = 600

CONNECTIONS = """\
connections:
  crm:
    type: sql
    url: ${LX_CRM_URL}
    streams:
      accounts: {table: accounts, key: id, cursor: updated_at}
  erp:
    type: sql
    url: ${LX_ERP_URL}
    streams:
      customers: {table: customers, key: crm_ref, id_column: id}
"""

FLOW = f"""\
flow: {FLOW_NAME}
description: CRM accounts become ERP customers, in two slices on two workers.
entity: Account
source: {{connection: crm, stream: accounts, mapping: maps/crm_account.in.map.yaml}}
target: {{connection: erp, stream: customers, mapping: maps/erp_customer.out.map.yaml}}
incremental: {{cursor: updated_at, lookback: 5m, batch_size: 20}}
partitions: {{count: 2}}
tags: [test]
"""


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "maps").mkdir(parents=True)
    for name in ("crm_account.in.map.yaml", "erp_customer.out.map.yaml"):
        shutil.copy(pack_dir("demo") / "maps" / name, root / "maps" / name)
    (root / "connections.yaml").write_text(CONNECTIONS)
    (root / f"{FLOW_NAME}.flow.yaml").write_text(FLOW)
    return root


class Deployment:
    """The Airflow processes of one test, each logging to a file in AIRFLOW_HOME.

    Each is forked, in a session of its own, from the test's fork server (the
    ``airflow`` CLI imported once with the test's settings, the one that migrated
    its database), not started as a new interpreter that pays the imports again.
    ``stop`` ends every process it started and all their descendants (the
    scheduler's executor workers and task supervisors), by process id."""

    def __init__(self, cli, home: Path, env: dict[str, str]):
        self.cli, self.home, self.env = cli, home, env
        self.procs: dict[str, psutil.Process] = {}

    def start(self, name: str, *args: str) -> None:
        pid = self.cli.start(*args, log=self.home / f"{name}.log", env=self.env)
        self.procs[name] = psutil.Process(pid)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            try:
                ended = proc.status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                ended = True
            if ended:
                pytest.fail(f"airflow {name} exited\n{self.logs()}", pytrace=False)

    def logs(self, tail: int = 4000) -> str:
        """The end of every process log and task log, for a failure message."""
        files = [self.home / f"{name}.log" for name in self.procs]
        files += sorted((self.home / "logs").rglob("*.log"))
        parts = []
        for path in files:
            if path.is_file():
                parts.append(f"----- {path.relative_to(self.home)}\n"
                             f"{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        everyone: list[psutil.Process] = []
        for parent in self.procs.values():
            try:
                everyone += [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        for process in everyone:
            try:
                process.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(everyone, timeout=20)
        for process in alive:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)


def _wait_for(what: str, deadline: float, deployment: Deployment, probe) -> object:
    """Poll ``probe`` (every 0.2 s: the test goes on as soon as it holds) until it
    returns something truthy; fail with the logs at ``deadline`` or as soon as one
    of the Airflow processes died."""
    while True:
        deployment.check_alive()
        try:
            value = probe()
        except (OSError, sa.exc.OperationalError, sa.exc.ProgrammingError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{deployment.logs()}", pytrace=False)
        time.sleep(0.2)


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status == 200


def test_local_executor_runs_two_slices_in_parallel(airflow_bare, tmp_path, pg_url, pg_sibling):
    meta_url = pg_url
    assert meta_url.startswith("postgresql+psycopg://"), meta_url
    crm_url, erp_url, state_url = pg_sibling("crm"), pg_sibling("erp"), pg_sibling("state")
    # ~400 records a slice: seconds of work each, against the fraction of a second
    # between the two workers' starts, so the slices overlap (asserted below)
    accounts = [a for a in sample_crm_rows(accounts=800)["accounts"]
                if a["id"] not in INVALID_ACCOUNTS]
    create_systems(crm_url, erp_url, {"accounts": accounts})

    home = tmp_path / "airflow_home"
    home.mkdir()
    port = airflow_bare.free_port()
    api = f"http://127.0.0.1:{port}"
    env = {**os.environ, **airflow_bare.env,
           "AIRFLOW_HOME": str(home),
           "AIRFLOW__CORE__DAGS_FOLDER": str(airflow_bare.dags),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
           # Airflow derives postgresql+asyncpg:// otherwise; psycopg 3 does async too
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": meta_url,
           "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
           "AIRFLOW__CORE__PARALLELISM": "2",
           "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
           # the scheduler signs the workers' tokens, the api-server checks them
           "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
           "AIRFLOW__API__BASE_URL": api,
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
           # a task supervisor notices its finished task only at its next poll
           # (default 5 s), and until then the task holds one of the 2 slots
           "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
           "CRM2ERP_PROJECT": str(_project(tmp_path)),
           "CRM2ERP_STATE_URL": state_url,
           "LX_CRM_URL": crm_url, "LX_ERP_URL": erp_url}
    airflow_bare.run("db", "migrate", env=env)

    deployment = Deployment(airflow_bare, home, env)
    meta = sa.create_engine(meta_url)
    try:
        # only the Execution API the workers report to: nothing here uses the core
        # REST API or the UI, whose routes and models take the server seconds to build
        deployment.start("api-server", "api-server", "--apps", "execution",
                         "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        deployment.start("dag-processor", "dag-processor")
        # the task logs are read from files here: no log server (and no port) needed
        deployment.start("scheduler", "scheduler", "--skip-serve-logs")
        deadline = time.monotonic() + WAIT_SECONDS

        def scalar(sql: str, **params):
            with meta.connect() as conn:
                return conn.execute(sa.text(sql), params).scalar()

        # the workers' Execution API: its first answer builds its versioned routes
        # (seconds), here while the dag-processor parses instead of in the first task
        _wait_for("the api-server's Execution API", deadline, deployment,
                  lambda: _healthy(f"{api}/execution/health"))
        _wait_for(f"the dag-processor to serialize {FLOW_NAME}", deadline, deployment,
                  lambda: scalar("SELECT count(*) FROM serialized_dag WHERE dag_id = :d",
                                 d=FLOW_NAME))
        airflow_bare.run("dags", "unpause", FLOW_NAME, env=env)
        airflow_bare.run("dags", "trigger", FLOW_NAME, "--run-id", RUN_ID, env=env)
        state = _wait_for("the DAG run to finish", deadline, deployment,
                          lambda: scalar("SELECT state FROM dag_run WHERE dag_id = :d AND "
                                         "run_id = :r AND state IN ('success', 'failed')",
                                         d=FLOW_NAME, r=RUN_ID))
        assert state == "success", deployment.logs()

        with meta.connect() as conn:
            tis = conn.execute(sa.text(
                "SELECT task_id, map_index, state, start_date, end_date, pid "
                "FROM task_instance WHERE dag_id = :d AND run_id = :r "
                "ORDER BY task_id, map_index"), {"d": FLOW_NAME, "r": RUN_ID}).mappings().all()
    finally:
        deployment.stop()
        meta.dispose()

    assert [(t["task_id"], t["map_index"], t["state"]) for t in tis] == [
        ("check_connections", -1, "success"), ("report", -1, "success"),
        ("sync", 0, "success"), ("sync", 1, "success")]
    syncs = [t for t in tis if t["task_id"] == "sync"]
    starts = [t["start_date"] for t in syncs]
    ends = [t["end_date"] for t in syncs]
    assert all(isinstance(x, dt.datetime) for x in starts + ends)
    assert max(starts) < min(ends), f"the two slices did not overlap: {syncs}"
    assert syncs[0]["pid"] != syncs[1]["pid"], "both slices ran in one process"

    ids = sorted(a["id"] for a in accounts)
    erp = sa.create_engine(erp_url)
    try:
        with erp.connect() as conn:
            customers = dict(conn.execute(sa.text("SELECT crm_ref, id FROM customers")).all())
            loaded = conn.execute(sa.text("SELECT count(*) FROM customers")).scalar()
    finally:
        erp.dispose()
    assert loaded == len(customers) == len(ids), "every CRM account must be loaded exactly once"

    with StateStore.open(state_url) as store:
        runs = store.list_runs(FLOW_NAME, limit=10)
        dead = store.count_dead_letters(flow=FLOW_NAME, status="open")
        crm_xref = store.xref_entries("Account", "crm", ids)
        erp_xref = store.xref_by_canonical("Account", "erp", customers)
        xref_rows = (store.xref_count("Account", "crm"), store.xref_count("Account", "erp"))
    assert dead == 0
    assert len(runs) == 2 and {r.status for r in runs} == {"succeeded"}
    reads = sorted(r.read for r in runs)
    assert sum(reads) == len(ids) and reads[0] > 0, "each slice reads only its own records"
    # one xref row per record on each side, and they agree with the ERP: the
    # customer's crm_ref is the canonical id, its id the ERP-side external id
    assert xref_rows == (len(ids), len(ids))
    assert sorted(crm_xref) == ids
    assert sorted(e.canonical_id for e in crm_xref.values()) == sorted(customers)
    assert {c: e.external_id for c, e in erp_xref.items()} == {
        c: str(i) for c, i in customers.items()}

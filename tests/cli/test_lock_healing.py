"""Locks that heal, as an operator meets them: ``crm2erp sync run`` killed with
SIGKILL mid-run and run again at once resumes by itself and leaves every record
in the target exactly once; a live lock exits 3 (could not run); ``crm2erp unlock`` releases one.

The commands in docs/engine.md ("Locks and crashed runs") are the ones run here.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm2erp.store import StateStore
from tests.cli.forked_cli import ForkedCli
from tests.clirunner import run

T0 = dt.datetime(2026, 1, 1)
BATCH = 20
FIRST_ROWS = 300
PER_ROUND = 100   # rows edited and rows added before each kill: 10 batches to go
KILL_AFTER_BEATS = (1, 2, 3, 4, 5)   # one round each: the kill lands in batch 1, 2, ... 5
ROUNDS = len(KILL_AFTER_BEATS)


ROOT = Path(__file__).resolve().parents[2]
# the commands docs/engine.md shows under "Locks and crashed runs", run below
STATUS, UNLOCK, UNLOCK_YES = ("crm2erp status", "crm2erp unlock accounts",
                              "crm2erp unlock accounts --yes")


def _doc(command: str) -> list[str]:
    """A documented command's arguments, after ``crm2erp``."""
    return command.split()[1:]


def test_the_documented_lock_commands_are_the_tested_ones():
    text = (ROOT / "docs" / "engine.md").read_text()
    section = text.split("## Locks and crashed runs", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    shown = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert shown == [STATUS, UNLOCK, UNLOCK_YES]
    assert "code **3**" in section and "CRM2ERP_LOCK_LEASE" in section
    assert "3 could not run (the flow is locked" in " ".join(
        (ROOT / "README.md").read_text().split("Exit codes", 1)[1][:600].split())


def _env(**extra) -> dict:
    return {**os.environ, "COLUMNS": "200", **extra}


def _cli(*args, env, input=None) -> subprocess.CompletedProcess:
    """``crm2erp ARGS`` in this process (the run that is killed is a real one)."""
    return run(args, cwd=os.getcwd(), env=env, input=input)


def _project(tmp_path, crm_url: str, erp_url: str):
    """A CRM accounts table and an ERP customers table, synced by one flow."""
    for url, ddl in ((crm_url, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, "
                               "name VARCHAR(100), email VARCHAR(100), updated_at TIMESTAMP)"),
                     (erp_url, "CREATE TABLE customers (ref VARCHAR(40) PRIMARY KEY, "
                               "crm_id VARCHAR(20), name VARCHAR(100), email VARCHAR(100))")):
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text(ddl))
        engine.dispose()
    project = tmp_path / "project"
    project.mkdir()
    (project / "connections.yaml").write_text(textwrap.dedent("""\
        connections:
          crm:
            type: sql
            url: ${CRM_URL}
            streams: {accounts: {table: accounts, key: id, cursor: updated_at}}
          erp:
            type: sql
            url: ${ERP_URL}
            streams: {customers: {table: customers, key: ref}}
        """))
    (project / "accounts.flow.yaml").write_text(textwrap.dedent(f"""\
        flow: accounts
        entity: Account
        source: {{connection: crm, stream: accounts, mapping: in.map.yaml}}
        target: {{connection: erp, stream: customers, mapping: out.map.yaml}}
        incremental: {{cursor: updated_at, batch_size: {BATCH}}}
        """))
    (project / "in.map.yaml").write_text(textwrap.dedent("""\
        mapping: in
        direction: inbound
        entity: Account
        fields:
          name: {from: name}
          email: {from: email, transforms: [email]}
          updated_at: {from: updated_at, transforms: [datetime]}
          extensions.crm_id: {from: id}
        """))
    (project / "out.map.yaml").write_text(textwrap.dedent("""\
        mapping: out
        direction: outbound
        entity: Account
        fields:
          ref: {from: id}
          crm_id: {from: extensions.crm_id}
          name: {from: name}
          email: {from: email}
        """))
    return project


class Crm:
    """The source table, edited between runs like a CRM in use."""

    def __init__(self, url: str):
        self.engine = sa.create_engine(url)
        self.rows = 0
        self.tick = 0

    def _stamp(self) -> str:
        self.tick += 1
        return f"{T0 + dt.timedelta(seconds=self.tick):%Y-%m-%d %H:%M:%S}"   # naive UTC

    def add(self, count: int) -> None:
        with self.engine.begin() as conn:
            for _ in range(count):
                self.rows += 1
                conn.execute(sa.text("INSERT INTO accounts VALUES (:id, :name, :email, :at)"),
                             {"id": self.rows, "name": f"Account {self.rows}",
                              "email": f"a{self.rows}@example.com", "at": self._stamp()})

    def edit(self, count: int, round_no: int) -> None:
        with self.engine.begin() as conn:
            for n in range(count):
                key = 1 + (round_no * 37 + n * 7) % self.rows
                conn.execute(sa.text("UPDATE accounts SET name = :name, updated_at = :at "
                                     "WHERE id = :id"),
                             {"id": key, "name": f"Account {key} v{round_no}",
                              "at": self._stamp()})

    def expected(self) -> dict[str, tuple]:
        with self.engine.connect() as conn:
            return {str(r.id): (r.name, r.email) for r in
                    conn.execute(sa.text("SELECT id, name, email FROM accounts"))}


def _target(erp_url: str) -> tuple[int, dict[str, tuple]]:
    """How many customers the ERP holds, and each by the CRM id it came from."""
    engine = sa.create_engine(erp_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT crm_id, name, email FROM customers")).all()
    finally:
        engine.dispose()
    return len(rows), {r.crm_id: (r.name, r.email) for r in rows}


@pytest.fixture(scope="module")
def forked_cli():
    """One warm interpreter for the module's killed runs (tests/cli/forked_cli.py):
    each run is a process of its own, forked instead of started and importing again."""
    cli = ForkedCli(_env())
    yield cli
    cli.close()


def _run_and_kill(cli: ForkedCli, args: list[str], env: dict, after_beats: int) -> int:
    """Start ``crm2erp sync run`` (a process), SIGKILL it after its n-th heartbeat;
    its pid."""
    pid, stderr = cli.start(["-vv", *args], env=env, cwd=os.getcwd())
    seen, beats = [], 0
    try:
        while beats < after_beats:
            line = stderr.readline()
            if not line:
                pytest.fail("the run ended before it could be killed:\n" + "".join(seen))
            seen.append(line)
            beats += "lock renewed" in line
        os.kill(pid, signal.SIGKILL)   # the run goes on meanwhile: the kill lands
    finally:                           # anywhere in the following batch
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:     # it ended and was reaped
            pass
        stderr.close()
        returncode = cli.wait(pid)
    assert returncode == -signal.SIGKILL, "".join(seen)
    return pid


def _kill_and_resume_at_each_kill_point(cli: ForkedCli, tmp_path, crm_url: str, erp_url: str,
                                        state_url: str):
    project = _project(tmp_path, crm_url, erp_url)
    env = _env(CRM_URL=crm_url, ERP_URL=erp_url, CRM2ERP_STATE_URL=state_url)
    args = ["-p", str(project), "sync", "run", "accounts"]
    crm = Crm(crm_url)
    crm.add(FIRST_ROWS)
    try:
        for round_no, beats in enumerate(KILL_AFTER_BEATS):
            if round_no:
                crm.edit(PER_ROUND, round_no)
                crm.add(PER_ROUND)
            killed_pid = _run_and_kill(cli, args, env, after_beats=beats)
            if round_no == 0:   # before any re-run, status already tells it crashed
                status = _cli("-p", str(project), *_doc(STATUS), env=env)
                assert status.returncode == 0, status.stderr
                assert "crashed" in status.stdout and "running" not in status.stdout

            again = _cli(*args, env=env)   # at once, no unlock, no waiting for a lease
            assert again.returncode == 0, (round_no, again.stdout, again.stderr)
            assert "taking over the lock" in again.stderr and str(killed_pid) in again.stderr

            expected = crm.expected()
            count, target = _target(erp_url)
            # every CRM record in exactly one ERP row, with its last edit
            assert count == len(target) == len(expected) == FIRST_ROWS + round_no * PER_ROUND
            assert target == expected, round_no
        with StateStore.open(state_url) as store:
            statuses = [r.status for r in store.list_runs("accounts", limit=100)]
            assert store.lock_holders() == []
        assert statuses == ["succeeded", "crashed"] * ROUNDS   # newest first
        status = _cli("-p", str(project), *_doc(STATUS), "--runs", str(2 * ROUNDS), env=env)
        assert status.stdout.count("crashed") == ROUNDS, status.stdout
    finally:
        crm.engine.dispose()


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_at_each_kill_point_on_sqlite(tmp_path, forked_cli):
    _kill_and_resume_at_each_kill_point(forked_cli, tmp_path, f"sqlite:///{tmp_path / 'crm.db'}",
                               f"sqlite:///{tmp_path / 'erp.db'}",
                               f"sqlite:///{tmp_path / 'state.db'}")


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_at_each_kill_point_on_postgres(tmp_path, pg_url,
                                                                  forked_cli):
    # source, target and state store all in one PostgreSQL database
    _kill_and_resume_at_each_kill_point(forked_cli, tmp_path, pg_url, pg_url, pg_url)


def test_a_live_lock_exits_3_and_unlock_releases_it_after_confirmation(tmp_path):
    crm_url, erp_url = f"sqlite:///{tmp_path / 'crm.db'}", f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    project = _project(tmp_path, crm_url, erp_url)
    crm = Crm(crm_url)
    crm.add(3)
    crm.engine.dispose()
    env = _env(CRM_URL=crm_url, ERP_URL=erp_url, CRM2ERP_STATE_URL=state_url)
    sync = ["-p", str(project), "sync", "run", "accounts"]
    with StateStore.open(state_url) as store, store.lock("accounts") as owner:
        locked = _cli(*sync, env=env)   # this test process is alive and holds the lock
        assert locked.returncode == 3, locked.stderr
        assert "locked" in locked.stderr and owner in locked.stderr
        assert "crm2erp unlock accounts" in locked.stderr and "Traceback" not in locked.stderr
        assert _target(erp_url)[0] == 0                    # nothing ran

        declined = _cli(*_doc(UNLOCK), env=env, input="n\n")
        assert declined.returncode == 0 and "nothing released" in declined.stdout
        assert owner in declined.stdout and "looks alive" in declined.stdout
        assert [h.owner for h in store.lock_holders("accounts")] == [owner]

        confirmed = _cli(*_doc(UNLOCK), env=env, input="y\n")
        assert confirmed.returncode == 0, confirmed.stderr
        assert "accounts: released" in confirmed.stdout
        assert store.lock_holders() == []
    nothing = _cli(*_doc(UNLOCK_YES), env=env)
    assert nothing.returncode == 0 and "not locked" in nothing.stdout
    bad_lease = _cli(*sync, env={**env, "CRM2ERP_LOCK_LEASE": "soon"})
    assert bad_lease.returncode == 2 and "CRM2ERP_LOCK_LEASE" in bad_lease.stderr
    done = _cli(*sync, env={**env, "CRM2ERP_LOCK_LEASE": "5m"})
    assert done.returncode == 0, done.stderr
    assert _target(erp_url)[0] == 3


def test_unlock_yes_releases_a_hung_run_of_another_host(tmp_path):
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    from crm2erp.store import locking

    with StateStore.open(state_url) as store:
        locking.acquire(store.engine, "accounts#p2of4", "erp-worker-7:4242:abcd0123")
        run = store.start_run("accounts", "incremental", owner="erp-worker-7:4242:abcd0123")
    released = _cli(*_doc(UNLOCK_YES), env=_env(CRM2ERP_STATE_URL=state_url))
    assert released.returncode == 0, released.stderr
    assert "erp-worker-7:4242:abcd0123" in released.stdout and "another host" in released.stdout
    with StateStore.open(state_url) as store:
        assert store.lock_holders() == []
        assert store.get_run(run).status == "crashed"

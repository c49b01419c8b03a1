"""A real Airflow for the tests, in a temporary AIRFLOW_HOME.

The environment is set here, when pytest loads this file and before any test
imports Airflow, because Airflow reads its configuration once on import. The
metadata database (SQLite) is migrated once per machine (a kept template each
session copies, see ``_metadata_template``); the CLI runs in
subprocesses, like an Airflow deployment would run it, forked from a process
that imported the CLI once (``forked_cli.py``: the seconds of imports are paid
once, not per command): one for the session's home, and one for each home or
database of a test's own (``airflow_bare``), stopped when the test ends.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm2erp.testing.once import build_once, installed_key, kept_folder

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
_HOME = Path(tempfile.mkdtemp(prefix="crm2erp-airflow-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)

AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    # the project scans kept between DAG-file parses: this session's own folder
    "CRM2ERP_CACHE_DIR": str(_HOME / "crm2erp-cache"),
}
os.environ.update(AIRFLOW_ENV)
for _name in ("CRM2ERP_PROJECT", "AIRFLOW_VAR_CRM2ERP_PROJECT"):
    os.environ.pop(_name, None)
_SESSION_ENV = dict(os.environ)


# the modules of this folder that take a minute or more each, longest first: they
# start before the folder's other tests (tests/conftest.py already starts the
# Airflow tests right after the Tryton group), so no xdist worker begins one of
# them while the others have nothing left to run
_STARTED_FIRST = ("test_wheel_install.py", "test_local_executor.py",
                  "test_shared_metadata_db.py", "test_demo_dags.py", "test_partitions.py")


def pytest_collection_modifyitems(config, items):
    """Move this folder's longest modules (``_STARTED_FIRST``) to where its first test
    is in the order (the order xdist hands tests out); the rest keep their order."""
    here = Path(__file__).parent

    def rank(item) -> int | None:
        name = item.path.name
        return _STARTED_FIRST.index(name) if item.path.parent == here \
            and name in _STARTED_FIRST else None

    first = sorted((i for i in items if rank(i) is not None), key=rank)
    if not first:
        return
    rest = [i for i in items if rank(i) is None]
    at = next((n for n, i in enumerate(rest) if i.path.parent == here), len(rest))
    items[:] = rest[:at] + first + rest[at:]


#: environment variables Airflow reads when a command uses them, not on import (the
#: DAG bundles: when a command makes its ``DagBundlesManager``, in the child)
_READ_WHEN_USED = ("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW__OPENLINEAGE__",
                   "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST")


class ForkedCli:
    """``forked_cli.py``: the ``airflow`` CLI forked from a process that already
    imported it with ``env``'s import-time settings (``fixed``); one for this
    session's home, kept for the process, and one for each home of a test's own."""

    SCRIPT = Path(__file__).with_name("forked_cli.py")

    def __init__(self, env: dict[str, str]) -> None:
        fd, log = tempfile.mkstemp(prefix="forked_cli-", suffix=".log", dir=_HOME)
        self.log = Path(log)
        with os.fdopen(fd, "w") as out:
            self.proc = subprocess.Popen([sys.executable, str(self.SCRIPT)], env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=out, text=True)
        atexit.register(self.stop)
        assert self._answer() == {"ready": True}

    @staticmethod
    def fixed(env: dict[str, str]) -> frozenset:
        """The settings of ``env`` Airflow reads on import (AIRFLOW_HOME, AIRFLOW__*):
        connections, variables, the DAG bundles and the OpenLineage provider's settings
        are looked up when used (the provider caches them at its first use, in the child: the fork
        server never uses them)."""
        return frozenset((k, v) for k, v in env.items()
                         if k.startswith("AIRFLOW") and not k.startswith(_READ_WHEN_USED))

    def run_together(self, commands: list[tuple[str, ...]], env: dict[str, str],
                     timeout: float) -> list[subprocess.CompletedProcess]:
        """Run ``commands`` at the same time, each in a child of its own; their results."""
        files = []
        for _ in commands:
            for kind in ("out", "err"):
                fd, name = tempfile.mkstemp(prefix=f"airflow-{kind}-", dir=_HOME)
                os.close(fd)
                files.append(name)
        outs, errs = files[0::2], files[1::2]
        try:
            requests = [{"argv": list(args), "env": env, "timeout": timeout, "stdout": out,
                         "stderr": err} for args, out, err in zip(commands, outs, errs,
                                                                  strict=True)]
            self.proc.stdin.write(json.dumps(requests) + "\n")
            self.proc.stdin.flush()
            codes = self._answer()["returncodes"]
            done = []
            for args, code, out, err in zip(commands, codes, outs, errs, strict=True):
                if code is None:
                    raise subprocess.TimeoutExpired([AIRFLOW, *args], timeout)
                done.append(subprocess.CompletedProcess(
                    [AIRFLOW, *args], code, Path(out).read_text(errors="replace"),
                    Path(err).read_text(errors="replace")))
            return done
        finally:
            for name in files:
                os.unlink(name)

    def start(self, args: tuple[str, ...], env: dict[str, str], log: Path) -> int:
        """Start ``airflow <args>`` in a child of its own session, output (and errors)
        to ``log``, and leave it running; its process id (this server collects it
        when it ends, its descendants are the caller's to stop)."""
        request = {"argv": list(args), "env": env, "stdout": str(log), "stderr": str(log)}
        self.proc.stdin.write(json.dumps({"start": request}) + "\n")
        self.proc.stdin.flush()
        return self._answer()["pid"]

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"{self.SCRIPT.name} ended (exit {self.proc.wait()}):\n"
                                 f"{self.log.read_text(errors='replace')[-4000:]}")
        return json.loads(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


#: the running fork servers, by the import-time settings they were started with
_FORKED: dict[frozenset, ForkedCli] = {}


def _fork_server(env: dict[str, str]) -> ForkedCli:
    key = ForkedCli.fixed(env)
    server = _FORKED.get(key)
    if server is None or server.proc.poll() is not None:
        # started with only the import-time settings of ``env``: a request's other
        # variables (its project, connections) are the child's alone
        server = _FORKED[key] = ForkedCli({**_SESSION_ENV, **dict(key)})
    return server


def stop_own_fork_servers() -> None:
    """Stop the fork servers of homes other than this session's (a test's own)."""
    session = ForkedCli.fixed(_SESSION_ENV)
    for key in [k for k in _FORKED if k != session]:
        _FORKED.pop(key).stop()


def run_together(*commands: tuple[str, ...], env: dict[str, str] | None = None,
                 check: bool = True) -> list[subprocess.CompletedProcess]:
    """Run ``airflow`` commands at the same time (each in a process of its own) with
    the test home and ``env`` on top; their results, in order.

    Each runs in a child forked from ``forked_cli.py`` (the CLI's imports paid
    once): the session's server, or, for an AIRFLOW_HOME or ``AIRFLOW__*`` setting
    of the test's own, a server started with it (``stop_own_fork_servers`` ends it)."""
    full_env = {**os.environ, **AIRFLOW_ENV, **(env or {})}
    done = _fork_server(full_env).run_together(list(commands), full_env, timeout=300)
    for result in done:
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(result.args)} exited {result.returncode}\n"
                                 f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return done


def start_airflow(*args: str, log: Path, env: dict[str, str] | None = None) -> int:
    """Start ``airflow <args>`` (a server: ``scheduler``, ``api-server``...) forked from
    the fork server of ``env``'s settings, as ``run_together`` runs a command, but
    left running, in a session of its own; its process id. The caller stops it (and
    its descendants) before the test ends: ``stop_own_fork_servers`` does not."""
    full_env = {**os.environ, **AIRFLOW_ENV, **(env or {})}
    return _fork_server(full_env).start(args, full_env, log)


def run_airflow(*args: str, env: dict[str, str] | None = None,
                check: bool = True) -> subprocess.CompletedProcess:
    """Run the ``airflow`` CLI with the test home (and ``env`` on top); see
    ``run_together``."""
    (done,) = run_together(args, env=env, check=check)
    return done


def json_output(done: subprocess.CompletedProcess):
    """The JSON document an ``-o json`` command printed (log lines around it ignored)."""
    for line in done.stdout.splitlines():
        line = line.strip()
        if line.startswith(("[", "{")):
            return json.loads(line)
    if "No data found" in done.stdout + done.stderr:
        return []
    raise AssertionError(f"no JSON in the output:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")


_MIGRATED: list[Path] = []


def migrate_once() -> Path:
    """Give this process's home a migrated metadata database once; the AIRFLOW_HOME folder.

    It is a copy of the machine's migrated template (``_metadata_template``). Tests
    outside this folder (``tests/tryton/``, which needs its own fixtures) load this
    module and call it, so the session shares one home."""
    if not _MIGRATED:
        shutil.copy2(_metadata_template(), _HOME / "airflow.db")
        _MIGRATED.append(_HOME)
    return _HOME


def _metadata_template() -> Path:
    """The migrated, still empty SQLite metadata database: one worker migrates it while
    the others wait, and later test runs on this machine reuse it (``kept_folder``)
    while the installed packages (Airflow's migrations) stay the same."""
    key = installed_key("airflow db migrate, SQLite")
    folder = build_once(kept_folder("airflow-metadata", key), key, _migrate_template)
    return folder / "airflow.db"


def _migrate_template(folder: Path) -> None:
    run_airflow("db", "migrate", env={
        "AIRFLOW_HOME": str(folder),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{folder / 'airflow.db'}"})
    stop_own_fork_servers()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The migrated Airflow metadata database; the AIRFLOW_HOME folder."""
    return migrate_once()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AirflowCli:
    """What the tests use: the CLI runner, its JSON reader and the folders."""

    home = _HOME
    dags = DAGS
    executable = AIRFLOW
    free_port = staticmethod(free_port)
    env = AIRFLOW_ENV
    run = staticmethod(run_airflow)
    run_together = staticmethod(run_together)
    start = staticmethod(start_airflow)
    json = staticmethod(json_output)

    @staticmethod
    def assert_task_succeeded(output: str) -> None:
        """``airflow tasks test`` exits 0 even when the task failed: read its log."""
        assert "new_state=success" in output and "Error running task" not in output, \
            output[-6000:]

    @staticmethod
    def dags_test(dag_id: str, env: dict[str, str] | None = None) -> str:
        """One DagRun of ``dag_id`` with ``airflow dags test``; its output.

        Fails unless the DagRun and each of its task instances succeeded (the
        command exits 0 for a failed run too, so the log is read)."""
        done = run_airflow("dags", "test", dag_id, env=env)
        output = done.stdout + done.stderr
        finished = output.split(f"DagRun Finished: dag_id={dag_id},")
        assert len(finished) == 2, output[-6000:]
        assert " state=success," in finished[1].split("\n")[0], output[-6000:]
        assert "Task failed with exception" not in output, output[-6000:]
        assert "new_state=success" in output and "new_state=failed" not in output, \
            output[-6000:]
        return output


@pytest.fixture
def airflow_own_db(tmp_path) -> str:
    """The SQLAlchemy URL of a metadata database of the test's own, already migrated:
    a copy of the run's empty template (``airflow db migrate`` costs seconds)."""
    own = tmp_path / "airflow.db"
    shutil.copy2(_metadata_template(), own)
    return f"sqlite:///{own}"


@pytest.fixture
def airflow(airflow_db) -> AirflowCli:
    yield AirflowCli()
    stop_own_fork_servers()


@pytest.fixture
def airflow_bare() -> AirflowCli:
    """The CLI helpers without the session's SQLite metadata database, for a test
    that brings its own AIRFLOW_HOME and database (pass them in ``env``)."""
    yield AirflowCli()
    stop_own_fork_servers()


@pytest.fixture
def pg_sibling(pg_url):
    """Make more fresh databases on ``pg_url``'s server: ``pg_sibling("crm")`` is
    the URL of ``<pg_url's database>_crm``; each is dropped after the test.

    For tests that need several systems whose tables would clash in one
    database (a CRM and an ERP both have ``contacts``; Airflow's metadata)."""
    base = sa.engine.make_url(pg_url)
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make(suffix: str) -> str:
        name = f"{base.database}_{suffix}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    try:
        yield make
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

"""Shared fixtures.

The PostgreSQL and MariaDB servers are real; each test that asks for one gets
a fresh, empty database of its own, dropped afterwards. A server that is not
reachable fails the test loudly: it never skips.

A test that needs a state store asks for ``*_store_url`` instead: a fresh
database that already holds the migrated store, cloned from a template each
xdist worker migrates once (PostgreSQL ``CREATE DATABASE ... TEMPLATE``,
MariaDB the template's ``SHOW CREATE TABLE`` replayed, SQLite a file copy),
so a test pays a copy instead of every Alembic migration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

# Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set: otherwise every
# process of the run (each xdist worker, each CLI, Airflow and trytond process the
# tests start) compiles the project's modules again and pytest rewrites every test
# module's asserts again. The .pyc files go where Python puts them by default,
# the __pycache__ folders, which git ignores. Set here, before pytest-xdist starts
# its workers, so they and every child process inherit it.
if sys.dont_write_bytecode:
    sys.dont_write_bytecode = False
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

from crm2erp.testing.databases import (  # noqa: E402 - after the bytecode setting
    MYSQL_ADMIN_URL,
    PG_ADMIN_URL,
    create_database,
    drop_database,
    mariadb_copy,
    mariadb_tables,
)

_SERVERS = {"pg_url": "postgres", "mysql_url": "mariadb", "pg_sibling": "postgres",
            "pg_store_url": "postgres", "mysql_store_url": "mariadb"}
# what makes a test need a real part, by the folder it sits in or a fixture it uses
_PARTS_BY_FOLDER = {"airflow": "airflow", "tryton": "tryton"}
_PARTS_BY_FIXTURE = {"airflow": "airflow", "airflow_db": "airflow", "airflow_bare": "airflow",
                     "tryton_server": "tryton"}
_BROWSER_MODULES = {"test_report_demo.py"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark each test with the real parts it needs (``postgres``, ``mariadb``,
    ``airflow``, ``tryton``, ``browser``), so ``-m "not airflow"`` and the like
    select a tier. Airflow, Tryton and browser tests start real programs: they
    are ``slow`` too, and ``-m "not slow"`` is the quick loop. The Tryton tests
    share one xdist worker, so one trytond serves them while the other workers
    run the rest instead of waiting for the Tryton database to be built."""
    root = config.rootpath / "tests"
    for item in items:
        parts = set()
        folder = item.path.relative_to(root).parts[0] if item.path.is_relative_to(root) else ""
        if folder in _PARTS_BY_FOLDER:
            parts.add(_PARTS_BY_FOLDER[folder])
        names = set(item.fixturenames)
        parts.update(part for name, part in _PARTS_BY_FIXTURE.items() if name in names)
        parts.update(part for name, part in _SERVERS.items() if name in names)
        if names & {"any_db_url", "any_store_url", "server_systems"}:
            params = getattr(item, "callspec", None)
            parts.update({"postgres", "mariadb"} & {p for p in (params.params.values() if params
                                                               else ()) if isinstance(p, str)})
        if item.path.name in _BROWSER_MODULES:
            parts.add("browser")
        for part in sorted(parts):
            item.add_marker(part)
        if parts & {"airflow", "tryton", "browser"}:
            item.add_marker("slow")
        if "tryton" in parts:   # one worker builds the Tryton database and serves it
            item.add_marker(pytest.mark.xdist_group("tryton"))
        group = item.get_closest_marker("xdist_group")   # "tryton"
        if group is not None:
            _keep_in_group(config, item, group.args[0] if group.args else group.kwargs["name"])
    items[:] = _longest_first(items)


def _keep_in_group(config, item, group: str) -> None:
    """Put ``item`` in an xdist group where the scheduler looks for it.

    pytest-xdist 3.8 marks a grouped test by writing ``<nodeid>@<group>`` to
    ``item._nodeid``, but pytest 9 derives ``nodeid`` from ``item._id``: the
    suffix never reached the scheduler and ``--dist loadgroup`` spread the group
    over every worker (each one building and starting its own trytond). In an
    xdist worker the suffix is written here, where pytest 9 reads the id."""
    if getattr(config.option, "loadgroup", False) and "@" not in item.nodeid.rsplit("]", 1)[-1]:
        from _pytest.nodeid import NodeId

        item._id = NodeId.parse(f"{item.nodeid}@{group}")


# the order modules start in: xdist hands tests out in this order, so the long ones
# start first and the short ones fill the gaps at the end (nothing waits on a late
# minute-long test). A module keeps its place among its kind and its tests their order.
_COST_BY_MARK = (("tryton", 0), ("airflow", 1), ("browser", 2), ("slow", 2),
                 ("postgres", 3), ("mariadb", 3))


def _longest_first(items: list) -> list:
    def cost(item) -> int:
        marks = {mark.name for mark in item.iter_markers()}
        return min((rank for name, rank in _COST_BY_MARK if name in marks), default=4)

    by_module: dict = {}
    for item in items:
        by_module.setdefault(item.path, []).append(item)
    modules = sorted(by_module.values(), key=lambda tests: min(map(cost, tests)))
    return [item for tests in modules for item in tests]


@pytest.fixture(autouse=True)
def _secrets_of_this_test_only():
    """Secrets a test registers (its connections, the tokens it fetches) are masked
    in that test, as in one real process; none leaks into the next test's output."""
    from crm2erp import redact

    before = set(redact._secrets)
    yield
    with redact._lock:
        redact._secrets.intersection_update(before)


@pytest.fixture(autouse=True)
def retry_sleeps(monkeypatch) -> list[float]:
    """The waits every HTTP client of this test slept before a retry, recorded instead
    of slept (a ``Retry-After: 1`` costs no second). The clients still count each wait
    in their ``stats.waits``, which the tests assert; a client given its own ``sleep``
    keeps it, and rate-limiter pacing stays real."""
    from crm2erp.http.client import HttpClient

    waits: list[float] = []
    monkeypatch.setattr(HttpClient, "default_sleep", staticmethod(waits.append))
    return waits


def _fresh_database(admin_url: str, template: str | None = None):
    url = create_database(admin_url, template)
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def pg_url():
    """URL of a fresh PostgreSQL database."""
    yield from _fresh_database(PG_ADMIN_URL)


@pytest.fixture
def mysql_url():
    """URL of a fresh MariaDB database."""
    yield from _fresh_database(MYSQL_ADMIN_URL)


@pytest.fixture
def sqlite_url(tmp_path):
    """URL of a fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def any_db_url(request, tmp_path):
    """Runs the test once per supported database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
    elif request.param == "postgres":
        yield from _fresh_database(PG_ADMIN_URL)
    else:
        yield from _fresh_database(MYSQL_ADMIN_URL)


# -- migrated state stores, cloned from a template per worker ---------------------
@dataclass(frozen=True)
class _StoreTemplate:
    url: str                    # the migrated template database
    tables_ddl: tuple[str, ...] = ()   # MariaDB: its CREATE TABLE statements
    version_rows: tuple[dict, ...] = ()


def _migrated(url: str) -> None:
    from crm2erp.store import StateStore

    StateStore.open(url).close()


@pytest.fixture(scope="session")
def _pg_store_template():
    gen = _fresh_database(PG_ADMIN_URL)
    url = next(gen)
    _migrated(url)
    yield _StoreTemplate(url)
    gen.close()


@pytest.fixture(scope="session")
def _mysql_store_template():
    gen = _fresh_database(MYSQL_ADMIN_URL)
    url = next(gen)
    _migrated(url)
    yield _StoreTemplate(url, *mariadb_tables(url))
    gen.close()


@pytest.fixture(scope="session")
def sqlite_store_template(tmp_path_factory) -> Path:
    """A migrated, empty SQLite state store file, made once per worker: copy it,
    never open it."""
    path = tmp_path_factory.mktemp("store-template") / "state.db"
    _migrated(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def demo_copies(tmp_path_factory):
    """``demo_copies(folder, accounts=120)``: the state ``run_demo`` leaves in
    ``folder``, copied from one demo run per worker (tests/demo_copies.py)."""
    from tests.demo_copies import DemoCopies

    return DemoCopies(tmp_path_factory.mktemp("demo-builds"))


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> Path:
    """The wheel of this checkout, built once a test run for every xdist worker:
    ``python -m build`` writes into the checkout's build/ folder, so the first
    worker that asks builds it under a lock and the others wait for that one."""
    from crm2erp.testing.once import build_once, run_folder

    folder = build_once(run_folder(tmp_path_factory) / "wheel", "this run", _build_wheel)
    (wheel,) = folder.glob("crm2erp-*.whl")
    return wheel


def _build_wheel(outdir: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                           "--outdir", str(outdir), str(Path(__file__).resolve().parents[1])],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"the wheel did not build:\n{done.stdout[-3000:]}\n" \
        f"{done.stderr[-3000:]}"


def _pg_store(request):
    template = request.getfixturevalue("_pg_store_template")
    yield from _fresh_database(PG_ADMIN_URL, template=sa.engine.make_url(template.url).database)


def _mysql_store(request):
    template = request.getfixturevalue("_mysql_store_template")
    url = mariadb_copy(template.tables_ddl, template.version_rows)
    try:
        yield url
    finally:
        drop_database(url)


def _sqlite_store(request):
    template = request.getfixturevalue("sqlite_store_template")
    path = request.getfixturevalue("tmp_path") / "state.db"
    shutil.copyfile(template, path)
    yield f"sqlite:///{path}"


@pytest.fixture
def pg_store_url(request):
    """URL of a fresh PostgreSQL database holding a migrated, empty state store."""
    yield from _pg_store(request)


@pytest.fixture
def mysql_store_url(request):
    """URL of a fresh MariaDB database holding a migrated, empty state store."""
    yield from _mysql_store(request)


@pytest.fixture
def sqlite_store_url(request):
    """URL of a fresh SQLite file holding a migrated, empty state store."""
    yield from _sqlite_store(request)


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def any_store_url(request):
    """A fresh migrated, empty state store on each supported database in turn."""
    yield from {"sqlite": _sqlite_store, "postgres": _pg_store,
                "mariadb": _mysql_store}[request.param](request)

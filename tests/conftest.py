"""Shared fixtures.

The PostgreSQL and MariaDB servers are real; each test that asks for one gets
a fresh, empty database of its own, dropped afterwards. A server that is not
reachable fails the test loudly: it never skips.
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get(
    "CRM2ERP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN_URL = os.environ.get(
    "CRM2ERP_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


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


def _fresh_database(admin_url: str, what: str):
    name = f"crm2erp_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"{what} is not reachable at {admin_url}: {exc.orig}. "
                    "Start it (see README, 'Services for the tests').", pytrace=False)
    url = sa.engine.make_url(admin_url).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if admin.dialect.name == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture
def pg_url():
    """URL of a fresh PostgreSQL database."""
    yield from _fresh_database(PG_ADMIN_URL, "PostgreSQL")


@pytest.fixture
def mysql_url():
    """URL of a fresh MariaDB database."""
    yield from _fresh_database(MYSQL_ADMIN_URL, "MariaDB")


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
        yield from _fresh_database(PG_ADMIN_URL, "PostgreSQL")
    else:
        yield from _fresh_database(MYSQL_ADMIN_URL, "MariaDB")

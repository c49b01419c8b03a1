"""Fresh databases on the real PostgreSQL and MariaDB servers the tests use.

The servers' admin URLs come from ``CRM2ERP_TEST_PG_URL`` and ``CRM2ERP_TEST_MYSQL_URL``
(default: 127.0.0.1, trust / empty password). A server that is not reachable fails the
test loudly, naming it: a test never skips for a missing server.
"""

from __future__ import annotations

__all__ = ["MYSQL_ADMIN_URL", "PG_ADMIN_URL", "create_database", "drop_database",
           "mariadb_copy", "mariadb_tables"]

import os
import uuid

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get(
    "CRM2ERP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN_URL = os.environ.get(
    "CRM2ERP_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")

_SERVERS = {"postgresql": "PostgreSQL", "mysql": "MariaDB"}


def _admin(admin_url: str) -> sa.Engine:
    return sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def create_database(admin_url: str, template: str | None = None) -> str:
    """A new database on ``admin_url``'s server (PostgreSQL: a copy of ``template``);
    its URL, password included."""
    name = f"crm2erp_t_{uuid.uuid4().hex[:10]}"
    admin = _admin(admin_url)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"
                                 + (f" TEMPLATE {template}" if template else "")))
    except sa.exc.OperationalError as exc:
        server = _SERVERS.get(admin.dialect.name, admin.dialect.name)
        pytest.fail(f"{server} is not reachable at {admin_url}: {exc.orig}. "
                    "Start it (see README, 'Services for the tests').", pytrace=False)
    finally:
        admin.dispose()
    return sa.engine.make_url(admin_url).set(database=name).render_as_string(
        hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database at ``url`` (PostgreSQL: closing its connections first)."""
    parsed = sa.engine.make_url(url)
    server = PG_ADMIN_URL if parsed.get_backend_name() == "postgresql" else MYSQL_ADMIN_URL
    admin_database = sa.engine.make_url(server).database   # where DROP DATABASE runs
    admin = _admin(parsed.set(database=admin_database).render_as_string(hide_password=False))
    try:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if admin.dialect.name == "postgresql" else ""
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {parsed.database}{force}"))
    finally:
        admin.dispose()


# -- MariaDB has no CREATE DATABASE ... TEMPLATE: a copy replays the tables ----------
def mariadb_tables(url: str) -> tuple[tuple[str, ...], tuple[dict, ...]]:
    """A MariaDB state store's CREATE TABLE statements and its revision rows, to copy
    with :func:`mariadb_copy`; every other table must be empty (a copy gets no rows)."""
    from crm2erp.store.migrations import VERSION_TABLE

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            tables = [row[0] for row in conn.execute(sa.text("SHOW TABLES"))]
            ddl = tuple(conn.execute(sa.text(f"SHOW CREATE TABLE `{t}`")).one()[1]
                        for t in tables)
            for table in tables:
                if table != VERSION_TABLE:
                    count = conn.execute(sa.text(f"SELECT count(*) FROM `{table}`")).scalar()
                    assert count == 0, f"{table} of {url} holds {count} rows"
            versions = tuple(dict(r._mapping) for r in conn.execute(
                sa.text(f"SELECT * FROM {VERSION_TABLE}")))
    finally:
        engine.dispose()
    return ddl, versions


def mariadb_copy(ddl: tuple[str, ...], versions: tuple[dict, ...]) -> str:
    """A new MariaDB database holding these tables (empty) and revision rows; its URL."""
    from crm2erp.store.migrations import VERSION_TABLE

    url = create_database(MYSQL_ADMIN_URL)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SET FOREIGN_KEY_CHECKS = 0"))
            for statement in ddl:
                conn.execute(sa.text(statement))
            if versions:
                conn.execute(sa.text(f"INSERT INTO {VERSION_TABLE} (version_num) "
                                     "VALUES (:version_num)"), list(versions))
    finally:
        engine.dispose()
    return url

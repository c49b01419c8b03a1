"""Apply the state store's Alembic migrations programmatically.

The migrations ship inside the package (:mod:`crm2erp.store.migrations`), so
an installed crm2erp needs no ``alembic.ini`` in the working directory. The
caller's engine is handed to Alembic through ``config.attributes`` and the
whole upgrade runs in one transaction (on PostgreSQL and SQLite DDL is
transactional; MariaDB commits each DDL statement on its own).

The revision lives in ``crm2erp_alembic_version``
(:data:`~crm2erp.store.migrations.VERSION_TABLE`), so the store can share a
database with Airflow's metadata (which owns ``alembic_version``). A store
made by an older crm2erp, whose ``alembic_version`` holds a crm2erp revision,
has it moved to the new table on its next upgrade, inside the migration lock.
"""

from __future__ import annotations

__all__ = ["alembic_config", "upgrade", "downgrade", "current_revision", "head_revision"]

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from crm2erp.store.migrations import LEGACY_VERSION_TABLE, VERSION_TABLE

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# alembic.context is a process-wide proxy: two threads migrating at once
# would run inside each other's context
_alembic_lock = threading.Lock()
_PG_LOCK_KEY = 0x63726D32  # "crm2": advisory locks are per database


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the installed crm2erp knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the packaged migrations have no head revision"
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with engine.connect() as conn:
        return _context(conn).get_current_revision()


def _context(conn: sa.Connection) -> MigrationContext:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})


def _is_ours(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:  # another application's revision (Airflow's, say)
        return False


def _adopt_legacy_version_table(conn: sa.Connection) -> None:
    """Move a crm2erp revision out of ``alembic_version`` into the store's own table.

    An ``alembic_version`` holding anything else (Airflow's revision, when the
    store shares Airflow's metadata database) is left alone."""
    tables = set(sa.inspect(conn).get_table_names())
    if VERSION_TABLE in tables or LEGACY_VERSION_TABLE not in tables:
        return
    legacy = sa.table(LEGACY_VERSION_TABLE, sa.column("version_num"))
    revisions = list(conn.execute(sa.select(legacy.c.version_num)).scalars())
    script = ScriptDirectory.from_config(alembic_config())
    if not revisions or not all(_is_ours(script, rev) for rev in revisions):
        return
    log.info("state store: moving revision %s from %s to %s", ", ".join(revisions),
             LEGACY_VERSION_TABLE, VERSION_TABLE)
    command.stamp(alembic_config(conn), revisions)
    conn.execute(sa.text(f"DROP TABLE {LEGACY_VERSION_TABLE}"))


@contextmanager
def _migrating(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction holding the migration lock, in this process and in the database.

    Two processes opening a fresh store at once must not both create tables:
    PostgreSQL takes a transaction-scoped advisory lock, MariaDB a named lock
    (its DDL is not transactional, so the loser would otherwise see half a
    schema); on SQLite the store's engine begins every transaction with
    BEGIN IMMEDIATE, which locks the whole file.
    """
    with _alembic_lock:
        if engine.dialect.name in ("mysql", "mariadb"):
            with _mariadb_migrating(engine) as conn:
                yield conn
            return
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": _PG_LOCK_KEY})
            yield conn


@contextmanager
def _mariadb_migrating(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A named lock held until the new revision is COMMITTED, then released:
    releasing first would let a second process see the old revision and run
    the last migration again."""
    with engine.connect() as conn:
        name = f"crm2erp_migrate_{conn.engine.url.database}"[:64]
        got = conn.execute(sa.text("SELECT GET_LOCK(:name, :wait)"),
                           {"name": name, "wait": 300}).scalar()
        if got != 1:
            raise sa.exc.TimeoutError(f"waited 300s for lock {name}; "
                                      "is another crm2erp migrating this database?")
        try:
            yield conn
            conn.commit()
        finally:
            conn.rollback()
            conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
            conn.commit()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate the database up to ``revision``; a no-op when it is already there."""
    if revision == "head" and current_revision(engine) == head_revision():
        return
    with _migrating(engine) as conn:
        _adopt_legacy_version_table(conn)
        if revision == "head" and _context(conn).get_current_revision() == head_revision():
            log.info("state store was migrated by another process meanwhile")
            return
        log.info("migrating state store %s to %s",
                 engine.url.render_as_string(hide_password=True), revision)
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Migrate the database down to ``revision`` (``"base"`` drops every table)."""
    log.info("downgrading state store %s to %s",
             engine.url.render_as_string(hide_password=True), revision)
    with _migrating(engine) as conn:
        command.downgrade(alembic_config(conn), revision)

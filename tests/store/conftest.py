"""Stores for the state-store tests, cheaper than a new database for each test.

``any_reused_store_url`` (and ``pg_reused_store_url``): a migrated store at head,
emptied for this test. On PostgreSQL and MariaDB this xdist worker makes one such
database per server (a copy of tests/conftest.py's template) and hands it to each
test that asks, after deleting every row and setting every id counter back to 1
(a few milliseconds, where a new database costs a CREATE and a DROP); a test that
changed its tables fails loudly instead of passing them on. SQLite gets a fresh
copy of its template file, which costs as little. For tests that only read and
write rows through the store; a test that migrates (down and up), or that depends
on the planner's statistics, asks for a fresh copy (``any_store_url``) instead.

``any_store_at``: ``any_store_at("0008")`` is the URL of a fresh database whose
schema is the one that revision made, empty, not opened by any store. On MariaDB
and SQLite this worker migrates one empty database up once, revision after
revision, and keeps each revision the tests ask for (MariaDB its ``SHOW CREATE
TABLE`` statements, SQLite a file): a copy costs a fraction of migrating up to head
and down again. PostgreSQL copies its migrated template and migrates the copy down
(a template database per revision would cost more CREATE DATABASEs than it saves).

``any_template_url``: the database StateStore.open migrated from empty for this
worker (tests/conftest.py's template): to read, never to write.

Their parameters carry the ``postgres`` / ``mariadb`` marks that tests/conftest.py
gives the tests of ``any_db_url`` and ``any_store_url``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from crm2erp.testing.databases import (
    MYSQL_ADMIN_URL,
    PG_ADMIN_URL,
    create_database,
    drop_database,
    mariadb_copy,
    mariadb_tables,
)

# the revisions the migration tests write their old rows at
SNAPSHOT_REVISIONS = ("0007", "0008", "0009", "0010", "0012", "0013")

DIALECTS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
            pytest.param("mariadb", marks=pytest.mark.mariadb)]


# -- databases of this worker ---------------------------------------------------
class _Databases:
    """Databases this worker created on the servers, dropped when the session ends."""

    def __init__(self) -> None:
        self._made: list[str] = []

    def create(self, admin_url: str, template: str | None = None) -> str:
        url = create_database(admin_url, template)
        self.adopt(url)
        return url

    def adopt(self, url: str) -> None:
        """Drop ``url``, made elsewhere, with the others."""
        self._made.append(url)

    def drop(self, url: str) -> None:
        self._made.remove(url)
        drop_database(url)

    def drop_all(self) -> None:
        for url in reversed(list(self._made)):
            self.drop(url)


@pytest.fixture(scope="session")
def _store_databases() -> Iterator[_Databases]:
    databases = _Databases()
    yield databases
    databases.drop_all()


def _mariadb_copy(databases: _Databases, ddl: tuple[str, ...], versions: tuple[dict, ...]
                  ) -> str:
    """:func:`mariadb_copy`, dropped when the session ends."""
    url = mariadb_copy(ddl, versions)
    databases.adopt(url)
    return url


# -- a migrated store reused by this worker's tests, emptied for each -------------
class _ReusedStore:
    """One migrated store at head on a server, emptied before each test that gets it."""

    def __init__(self, url: str) -> None:
        from crm2erp.store import migrate
        from crm2erp.store.migrations import VERSION_TABLE
        from crm2erp.store.tables import metadata

        self.url = url
        self.engine = sa.create_engine(url)   # one connection kept open: no handshakes
        self.head = migrate.head_revision()
        self.tables = {table.name for table in metadata.sorted_tables}
        # children before their parents: no foreign key stops a DELETE
        self._deletes = [f"DELETE FROM {table.name}"
                         for table in reversed(metadata.sorted_tables)]
        self._version_table = VERSION_TABLE
        self._schema = self._describe()
        assert {row[1] for row in self._schema if row[0] == "column"} == \
            self.tables | {VERSION_TABLE}

    def _describe(self) -> set[tuple]:
        """Every column (its type, nullability, default and collation) and index of
        the store's tables, from the catalog in two queries: what a test must not change."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                where, indexes = "'public'", ("SELECT tablename, indexname, indexdef "
                                              "FROM pg_indexes WHERE schemaname = 'public'")
            else:
                where, indexes = "DATABASE()", (
                    "SELECT table_name, index_name, seq_in_index, column_name, non_unique "
                    "FROM information_schema.statistics WHERE table_schema = DATABASE()")
            columns = conn.execute(sa.text(
                "SELECT table_name, column_name, column_default, is_nullable, data_type, "
                "character_maximum_length, collation_name FROM information_schema.columns "
                f"WHERE table_schema = {where}")).all()
            return {("column", *row) for row in columns} | {
                ("index", *row) for row in conn.execute(sa.text(indexes)).all()}

    def emptied(self) -> str:
        counted: list[str] = []   # MariaDB: the tables whose id counter moved on
        with self.engine.begin() as conn:
            revisions = conn.execute(sa.text(
                f"SELECT version_num FROM {self._version_table}")).scalars().all()
            assert revisions == [self.head], (
                f"a test left the reused store at {revisions}: it must ask for a fresh "
                "copy (any_store_url)")
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("; ".join(self._deletes)))
                conn.execute(sa.text("SELECT setval(c.oid, 1, false) FROM pg_class c "
                                     "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                     "WHERE c.relkind = 'S' AND n.nspname = 'public'"))
            else:
                conn.execute(sa.text("SET FOREIGN_KEY_CHECKS = 0"))
                for statement in self._deletes:
                    conn.execute(sa.text(statement))
                conn.execute(sa.text("SET FOREIGN_KEY_CHECKS = 1"))
                counted = conn.execute(sa.text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND auto_increment > 1")).scalars().all()
        if counted:   # an ALTER TABLE commits by itself: after the DELETEs did
            with self.engine.connect() as conn:
                for table in counted:
                    conn.execute(sa.text(f"ALTER TABLE `{table}` AUTO_INCREMENT = 1"))
        return self.url

    def check_unchanged(self) -> None:
        assert self._describe() == self._schema, (
            "a test changed the reused store's tables: it must ask for a fresh copy "
            "(any_store_url)")


@pytest.fixture(scope="session")
def _reused_stores(request, _store_databases) -> Iterator[Callable[[str], _ReusedStore]]:
    """The reused store on each server, made when a test first asks."""
    made: dict[str, _ReusedStore] = {}

    def get(server: str) -> _ReusedStore:
        if server not in made:
            if server == "postgres":
                template = request.getfixturevalue("_pg_store_template")
                url = _store_databases.create(
                    PG_ADMIN_URL, template=sa.engine.make_url(template.url).database)
            else:
                template = request.getfixturevalue("_mysql_store_template")
                url = _mariadb_copy(_store_databases, template.tables_ddl,
                                    template.version_rows)
            made[server] = _ReusedStore(url)
        return made[server]

    yield get
    for store in made.values():
        store.engine.dispose()


def _reused(request, server: str) -> Iterator[str]:
    if server == "sqlite":
        yield request.getfixturevalue("sqlite_store_url")
        return
    store = request.getfixturevalue("_reused_stores")(server)
    yield store.emptied()
    store.check_unchanged()


@pytest.fixture(params=DIALECTS)
def any_reused_store_url(request) -> Iterator[str]:
    """A migrated, empty state store on each supported database in turn; on the servers
    the database this worker reuses, emptied (see the module docstring)."""
    yield from _reused(request, request.param)


@pytest.fixture
def pg_reused_store_url(request) -> Iterator[str]:
    """A migrated, empty PostgreSQL state store: the one this worker reuses, emptied."""
    yield from _reused(request, "postgres")


# -- fresh databases at an old revision ----------------------------------------------
class _Snapshots:
    """MariaDB's or SQLite's empty databases at the revisions of SNAPSHOT_REVISIONS."""

    def __init__(self, server: str, databases: _Databases, tmp: Callable) -> None:
        from crm2erp.store import migrate

        self.server = server
        self.databases = databases
        self.taken: dict[str, object] = {}
        if server == "sqlite":
            folder = tmp("store-revisions")
            url = f"sqlite:///{folder / 'migrating.db'}"
        else:
            url = databases.create(MYSQL_ADMIN_URL)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            for revision in SNAPSHOT_REVISIONS:
                migrate.upgrade(engine, revision)
                assert migrate.current_revision(engine) == revision
                if server == "sqlite":
                    self.taken[revision] = folder / f"{revision}.db"
                    shutil.copyfile(folder / "migrating.db", self.taken[revision])
                else:
                    self.taken[revision] = mariadb_tables(url)
        finally:
            engine.dispose()
        if server != "sqlite":
            databases.drop(url)

    def copy(self, revision: str, tmp_path) -> str:
        taken = self.taken[revision]
        if self.server == "sqlite":
            path = tmp_path / f"at-{revision}.db"
            shutil.copyfile(taken, path)
            return f"sqlite:///{path}"
        return _mariadb_copy(self.databases, *taken)


@pytest.fixture(scope="session")
def _snapshots(_store_databases, tmp_path_factory) -> Callable[[str], _Snapshots]:
    made: dict[str, _Snapshots] = {}

    def get(server: str) -> _Snapshots:
        if server not in made:
            made[server] = _Snapshots(server, _store_databases, tmp_path_factory.mktemp)
        return made[server]

    return get


@pytest.fixture(params=DIALECTS)
def any_store_at(request, _snapshots, _store_databases, tmp_path) -> Iterator[
        Callable[[str], str]]:
    """``any_store_at(revision)``: a fresh, empty database at ``revision`` (one of
    SNAPSHOT_REVISIONS), never opened by a store, on each supported database in turn."""
    copies: list[str] = []

    def at(revision: str) -> str:
        assert revision in SNAPSHOT_REVISIONS, revision
        if request.param == "postgres":
            from crm2erp.store import migrate

            template = request.getfixturevalue("_pg_store_template")
            url = _store_databases.create(
                PG_ADMIN_URL, template=sa.engine.make_url(template.url).database)
            copies.append(url)
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
            try:
                migrate.downgrade(engine, revision)
            finally:
                engine.dispose()
            return url
        url = _snapshots(request.param).copy(revision, tmp_path)
        copies.append(url)
        return url

    yield at
    for url in copies:
        if not url.startswith("sqlite"):
            _store_databases.drop(url)


@pytest.fixture(params=DIALECTS)
def any_template_url(request) -> str:
    """The store StateStore.open migrated from an empty database for this worker, on
    each supported database in turn: read it, never write (SQLite: a copy of it)."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_store_url")
    name = "_pg_store_template" if request.param == "postgres" else "_mysql_store_template"
    return request.getfixturevalue(name).url

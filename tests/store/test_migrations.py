"""The schema comes from the packaged Alembic migrations, on every database."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from crm2erp.store import StateStore, XrefUpsert, migrate
from crm2erp.store.migrations import LEGACY_VERSION_TABLE, VERSION_TABLE
from crm2erp.store.records import BatchCommit
from crm2erp.store.tables import metadata

TABLES = {"runs", "watermarks", "xref", "dead_letters", "locks"}


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_open_migrates_to_head_and_reopen_is_a_noop(any_db_url):
    store = StateStore.open(any_db_url)
    try:
        assert TABLES <= _tables(store.engine)
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        run_id = store.start_run("accounts", "incremental")
    finally:
        store.close()

    again = StateStore.open(any_db_url)
    try:
        assert migrate.current_revision(again.engine) == migrate.head_revision()
        assert again.get_run(run_id).flow == "accounts"  # data survived the second open
    finally:
        again.close()


def test_downgrade_base_then_upgrade_head(any_db_url):
    store = StateStore.open(any_db_url)
    try:
        migrate.downgrade(store.engine, "base")
        assert not (TABLES & _tables(store.engine))
        assert migrate.current_revision(store.engine) is None
        migrate.upgrade(store.engine, "head")
        assert TABLES <= _tables(store.engine)
        assert store.list_runs() == []
    finally:
        store.close()


def test_migrated_schema_matches_the_metadata(any_db_url):
    """The hand-written migration and tables.py describe the same schema."""
    store = StateStore.open(any_db_url)
    try:
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "version_table": VERSION_TABLE})
            diff = compare_metadata(context, metadata)
        assert diff == []
    finally:
        store.close()


def test_external_ids_are_case_sensitive(any_db_url):
    """MariaDB's default collation would make these two ids one unique key."""
    store = StateStore.open(any_db_url)
    try:
        run_id = store.start_run("accounts", "incremental")
        store.commit_batch(BatchCommit(run_id=run_id, flow="accounts", xref=[
            XrefUpsert("account", "sf", "0015g00000AbC", "c-upper"),
            XrefUpsert("account", "sf", "0015g00000abc", "c-lower"),
            XrefUpsert("account", "sf", "0015g00000abc ", "c-space"),
        ]))
        assert store.canonical_ids("account", "sf", ["0015g00000AbC", "0015g00000abc"]) == {
            "0015g00000AbC": "c-upper", "0015g00000abc": "c-lower"}
        assert store.xref_count("account", "sf") == 3
    finally:
        store.close()


def test_concurrent_first_opens_all_succeed(any_db_url):
    """Several processes starting on a fresh store: one migrates, none fails."""
    code = ("import sys; from crm2erp.store import StateStore; "
            "StateStore.open(sys.argv[1]).close()")
    procs = [subprocess.Popen([sys.executable, "-c", code, any_db_url],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(3)]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    store = StateStore.open(any_db_url)
    try:
        assert migrate.current_revision(store.engine) == migrate.head_revision()
    finally:
        store.close()


def test_threads_opening_a_fresh_store_at_once(any_db_url):
    """Alembic's context is process-global: migrations in threads must not interleave."""
    barrier = threading.Barrier(3)

    def open_store(_):
        barrier.wait()
        store = StateStore.open(any_db_url)
        store.close()
        return True

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(open_store, range(3))) == [True] * 3


def _versions(engine: sa.Engine, table: str) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(f"SELECT version_num FROM {table}")).scalars())


def test_the_revision_lives_in_the_stores_own_version_table(any_db_url):
    store = StateStore.open(any_db_url)
    try:
        assert VERSION_TABLE in _tables(store.engine)
        assert LEGACY_VERSION_TABLE not in _tables(store.engine)
        assert _versions(store.engine, VERSION_TABLE) == [migrate.head_revision()]
    finally:
        store.close()


def test_a_store_with_the_old_alembic_version_table_is_moved_over_and_keeps_its_data(
        any_db_url):
    """A store made before the version table was renamed: its crm2erp revision
    sits in ``alembic_version``. Opening it moves the revision, keeps every row
    and runs the migrations it still lacks."""
    store = StateStore.open(any_db_url)
    previous = "0005"
    try:
        run_id = store.start_run("accounts", "incremental")
        store.commit_batch(BatchCommit(run_id=run_id, flow="accounts", xref=[
            XrefUpsert("account", "sf", "001A", "c-1")]))
        migrate.downgrade(store.engine, previous)  # the old schema, data kept
        with store.engine.begin() as conn:  # as an older crm2erp left it
            conn.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
            conn.execute(sa.text(f"CREATE TABLE {LEGACY_VERSION_TABLE} "
                                 "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
            conn.execute(sa.text(f"INSERT INTO {LEGACY_VERSION_TABLE} VALUES (:v)"),
                         {"v": previous})
    finally:
        store.close()

    again = StateStore.open(any_db_url)
    try:
        assert LEGACY_VERSION_TABLE not in _tables(again.engine)
        assert _versions(again.engine, VERSION_TABLE) == [migrate.head_revision()]
        assert again.get_run(run_id).flow == "accounts"
        assert again.canonical_ids("account", "sf", ["001A"]) == {"001A": "c-1"}
    finally:
        again.close()


def test_another_applications_alembic_version_is_left_alone(any_db_url):
    """Airflow's metadata DB has ``alembic_version`` with Airflow's revision."""
    engine = sa.create_engine(any_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE TABLE {LEGACY_VERSION_TABLE} "
                                 "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
            conn.execute(sa.text(f"INSERT INTO {LEGACY_VERSION_TABLE} VALUES ('29ce7909c52b')"))
    finally:
        engine.dispose()
    store = StateStore.open(any_db_url)
    try:
        assert _versions(store.engine, LEGACY_VERSION_TABLE) == ["29ce7909c52b"]
        assert _versions(store.engine, VERSION_TABLE) == [migrate.head_revision()]
        assert TABLES <= _tables(store.engine)
    finally:
        store.close()

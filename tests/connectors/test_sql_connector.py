"""The SQL connector against real SQLite, PostgreSQL and MariaDB databases."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm2erp.connectors import create_connector
from crm2erp.connectors.base import Cursor, DeleteMode, WriteAction
from crm2erp.connectors.sql import SqlConnector
from crm2erp.errors import ConfigError, FatalError

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1, 10, 0, 0)

STREAMS = {
    "accounts": {"table": "accounts", "key": "id", "cursor": "updated_at",
                 "soft_delete_column": "deleted"},
    "opportunities": {"table": "deals", "key": "id", "cursor": "updated_at",
                      "children": {"lines": {"table": "deal_lines", "foreign_key": "deal_id",
                                             "key": "line_no"}}},
    "customers": {"table": "customers", "key": "crm_ref", "id_column": "id",
                  "archive": {"column": "active", "value": False}},
    "events": {"table": "events", "key": "id", "cursor": "happened_at"},
}


def create_tables(url: str) -> dict[str, sa.Table]:
    md = sa.MetaData()
    sa.Table("accounts", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("name", sa.String(100), nullable=False),
             sa.Column("balance", sa.Numeric(12, 2)),
             sa.Column("updated_at", sa.DateTime),
             sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()))
    sa.Table("deals", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("title", sa.String(100)),
             sa.Column("updated_at", sa.DateTime))
    sa.Table("deal_lines", md,
             sa.Column("deal_id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("sku", sa.String(50), nullable=False),
             sa.Column("qty", sa.Integer))
    sa.Table("customers", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("crm_ref", sa.String(50), nullable=False, unique=True),
             sa.Column("name", sa.String(100), nullable=False),
             sa.Column("credit_limit", sa.Numeric(12, 2)),
             sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()))
    sa.Table("events", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("happened_at", sa.DateTime(timezone=True)))
    sa.Table("no_key", md, sa.Column("code", sa.String(20)), sa.Column("label", sa.String(20)))
    engine = sa.create_engine(url)
    md.create_all(engine)
    engine.dispose()
    return md.tables


def insert(url: str, table: sa.Table, rows: list[dict]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for row in rows:  # one by one: rows may set different columns
            conn.execute(table.insert(), row)
    engine.dispose()


def fetch(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(sql))]
    engine.dispose()
    return rows


@pytest.fixture
def db(any_db_url):
    """A database with the test tables, and a factory of connectors closed afterwards."""
    tables = create_tables(any_db_url)
    made: list[SqlConnector] = []

    def connect(**settings) -> SqlConnector:
        settings = {"url": any_db_url, "streams": STREAMS} | settings
        conn = create_connector("sql", settings)
        made.append(conn)
        return conn

    yield any_db_url, tables, connect
    for conn in made:
        conn.close()


def keys_of(batches) -> list:
    return [row["id"] for batch in batches for row in batch.rows]


# -- reading ---------------------------------------------------------------
def test_full_read_orders_by_cursor_and_reads_null_cursor_rows_first(db):
    url, tables, connect = db
    insert(url, tables["accounts"], [
        {"id": 1, "name": "A", "balance": Decimal("10.50"), "updated_at": T0 + dt.timedelta(3)},
        {"id": 2, "name": "B", "balance": None, "updated_at": T0 + dt.timedelta(1)},
        {"id": 3, "name": "C", "balance": Decimal("7"), "updated_at": None},
        {"id": 4, "name": "D", "balance": Decimal("1.25"), "updated_at": T0 + dt.timedelta(2)},
        {"id": 5, "name": "E", "balance": None, "updated_at": T0 + dt.timedelta(4),
         "deleted": True},
    ])
    batches = list(connect().read("accounts", None, batch_size=2))
    assert keys_of(batches) == [3, 2, 4, 1]
    assert batches[0].cursor is None  # NULL-cursor rows: no watermark
    assert batches[-1].deleted_keys == ["5"]
    assert batches[-1].cursor == Cursor("2024-01-05T10:00:00+00:00", "5")
    first = {row["id"]: row for b in batches for row in b.rows}
    assert first[1]["balance"] == Decimal("10.50")
    assert isinstance(first[1]["balance"], Decimal)
    assert first[1]["updated_at"] == dt.datetime(2024, 1, 4, 10, tzinfo=UTC)
    assert first[1]["updated_at"].tzinfo is not None


def test_incremental_read_pages_through_shared_timestamp_once_each(db):
    url, tables, connect = db
    rows = [{"id": i, "name": f"n{i}", "updated_at": T0} for i in range(1, 11)]
    rows += [{"id": 20, "name": "old", "updated_at": T0 - dt.timedelta(seconds=1)},
             {"id": 30, "name": "new", "updated_at": T0 + dt.timedelta(seconds=1)}]
    insert(url, tables["accounts"], rows)
    conn = connect()
    since = Cursor("2024-01-01T10:00:00+00:00", "4")
    batches = list(conn.read("accounts", since, batch_size=3))
    assert keys_of(batches) == [*range(1, 11), 30]
    assert [len(b.rows) for b in batches] == [3, 3, 3, 2]
    assert batches[0].cursor == Cursor("2024-01-01T10:00:00+00:00", "3")
    full = keys_of(conn.read("accounts", None, batch_size=3))
    assert full == [20, *range(1, 11), 30]
    after = list(conn.read("accounts", Cursor("2024-01-01T10:00:01+00:00"), batch_size=3))
    assert keys_of(after) == [30]


def test_naive_timestamps_are_read_in_the_configured_timezone(db):
    url, tables, connect = db
    insert(url, tables["accounts"], [{"id": 1, "name": "A", "updated_at": T0}])
    conn = connect(timezone="Europe/Berlin")
    (batch,) = conn.read("accounts", None)
    assert batch.rows[0]["updated_at"] == dt.datetime(2024, 1, 1, 9, tzinfo=UTC)
    assert batch.cursor.value == "2024-01-01T09:00:00+00:00"
    assert keys_of(conn.read("accounts", Cursor("2024-01-01T10:00:00+01:00"))) == [1]
    assert keys_of(conn.read("accounts", Cursor("2024-01-01T09:00:01+00:00"))) == []


def test_aware_timestamps_round_trip(db):
    _, _, connect = db
    conn = connect()
    result = conn.upsert("events", [{"id": 1, "happened_at": "2024-03-01T10:00:00+02:00"},
                                    {"id": 2, "happened_at": "2024-03-01T09:30:00Z"}])
    assert [r.action for r in result] == [WriteAction.CREATED] * 2
    batches = list(conn.read("events", Cursor("2024-03-01T08:00:00+00:00")))
    assert keys_of(batches) == [1, 2]
    assert batches[0].rows[0]["happened_at"] == dt.datetime(2024, 3, 1, 8, tzinfo=UTC)
    assert batches[0].cursor.value == "2024-03-01T09:30:00+00:00"


def test_children_are_embedded_in_key_order(db):
    url, tables, connect = db
    insert(url, tables["deals"], [{"id": 1, "title": "big", "updated_at": T0},
                                  {"id": 2, "title": "none", "updated_at": T0}])
    insert(url, tables["deal_lines"], [{"deal_id": 1, "line_no": 2, "sku": "B", "qty": 1},
                                       {"deal_id": 1, "line_no": 1, "sku": "A", "qty": 5}])
    conn = connect()
    (batch,) = conn.read("opportunities", None)
    deal = batch.rows[0]
    assert [line["sku"] for line in deal["lines"]] == ["A", "B"]
    assert batch.rows[1]["lines"] == []
    assert conn.lookup("opportunities", ["1", "9"])["1"]["lines"][1]["qty"] == 1
    assert set(conn.lookup("opportunities", ["1", "9", "x"])) == {"1"}


# -- writing ---------------------------------------------------------------
def test_upsert_creates_updates_and_is_idempotent(db):
    url, _, connect = db
    conn = connect()
    rows = [{"crm_ref": "C-1", "name": "Acme", "credit_limit": "1000.00"},
            {"crm_ref": "C-2", "name": "Globex", "credit_limit": 250}]
    first = conn.upsert("customers", rows)
    assert [r.action for r in first] == [WriteAction.CREATED, WriteAction.CREATED]
    ids = [r.target_id for r in first]
    assert sorted(ids) == sorted(str(i) for (i,) in fetch(url, "SELECT id FROM customers"))
    assert len(set(ids)) == 2
    again = conn.upsert("customers", rows)
    assert [r.action for r in again] == [WriteAction.UNCHANGED, WriteAction.UNCHANGED]
    assert [r.target_id for r in again] == ids
    changed = conn.upsert("customers", [{"crm_ref": "C-2", "name": "Globex Corp"}])
    assert changed[0].action is WriteAction.UPDATED
    assert changed[0].target_id == ids[1]
    assert fetch(url, "SELECT crm_ref, name FROM customers ORDER BY crm_ref") == [
        ("C-1", "Acme"), ("C-2", "Globex Corp")]


def test_bad_row_fails_alone(db):
    url, _, connect = db
    result = connect().upsert("customers", [
        {"crm_ref": "C-1", "name": "Acme"},
        {"crm_ref": "C-2", "name": None},
        {"crm_ref": "C-3", "name": "Initech"},
    ])
    assert [r.action for r in result] == [WriteAction.CREATED, WriteAction.FAILED,
                                          WriteAction.CREATED]
    assert "name" in result[1].error
    assert "\n" not in result[1].error
    assert result[0].target_id and result[2].target_id
    assert fetch(url, "SELECT crm_ref FROM customers ORDER BY crm_ref") == [("C-1",), ("C-3",)]


def test_unknown_column_and_bad_value_fail_their_rows(db):
    url, _, connect = db
    result = connect().upsert("customers", [
        {"crm_ref": "C-1", "name": "Acme", "colour": "red"},
        {"crm_ref": "C-2", "name": "Globex", "credit_limit": "lots"},
        {"crm_ref": "C-3", "name": "Initech"},
    ])
    assert result[0].error == "unknown column 'colour' in table 'customers'"
    assert "credit_limit" in result[1].error
    assert [r.ok for r in result] == [False, False, True]
    assert fetch(url, "SELECT crm_ref FROM customers") == [("C-3",)]


def test_children_are_replaced_with_the_parent(db):
    url, _, connect = db
    conn = connect()
    lines = [{"line_no": 1, "sku": "A", "qty": 1}, {"line_no": 2, "sku": "B", "qty": 2},
             {"line_no": 3, "sku": "C", "qty": 3}]
    conn.upsert("opportunities", [{"id": 1, "title": "one", "lines": lines},
                                  {"id": 2, "title": "two", "lines": [lines[0]]}])
    result = conn.upsert("opportunities", [
        {"id": 1, "title": "one", "lines": [{"line_no": 1, "sku": "A", "qty": 9},
                                            {"line_no": 2, "sku": "B", "qty": 2}]}])
    assert result[0].action is WriteAction.UPDATED
    assert fetch(url, "SELECT deal_id, line_no, qty FROM deal_lines ORDER BY deal_id, line_no") \
        == [(1, 1, 9), (1, 2, 2), (2, 1, 1)]
    same = conn.upsert("opportunities", [{"id": 2, "title": "two", "lines": [lines[0]]}])
    assert same[0].action is WriteAction.UNCHANGED
    bad = conn.upsert("opportunities", [{"id": 3, "lines": [{"line_no": 1, "sku": None}]},
                                        {"id": 4, "lines": [{"line_no": 1, "sku": "Z"}]}])
    assert [r.ok for r in bad] == [False, True]
    assert fetch(url, "SELECT id FROM deals ORDER BY id") == [(1,), (2,), (4,)]


def test_delete_modes(db):
    url, tables, connect = db
    conn = connect()
    written = conn.upsert("customers", [{"crm_ref": r, "name": r} for r in ("C-1", "C-2", "C-3")])
    ids = {w.key: w.target_id for w in written}     # delete takes target ids
    ignored = conn.delete("customers", [ids["C-1"]], DeleteMode.IGNORE)
    assert ignored[0].action is WriteAction.UNCHANGED
    archived = conn.delete("customers", [ids["C-1"], "999999"], DeleteMode.ARCHIVE)
    assert [r.action for r in archived] == [WriteAction.UPDATED, WriteAction.FAILED]
    assert archived[1].error.startswith("not found") and "999999" in archived[1].error
    active = dict(fetch(url, "SELECT crm_ref, active FROM customers"))
    assert [bool(active[k]) for k in ("C-1", "C-2", "C-3")] == [False, True, True]
    deleted = conn.delete("customers", [ids["C-2"]], DeleteMode.DELETE)
    assert deleted[0].action is WriteAction.UPDATED
    assert sorted(fetch(url, "SELECT crm_ref FROM customers")) == [("C-1",), ("C-3",)]
    conn.upsert("opportunities", [{"id": 1, "lines": [{"line_no": 1, "sku": "A"}]}])
    conn.delete("opportunities", ["1"], DeleteMode.DELETE)
    assert fetch(url, "SELECT COUNT(*) FROM deal_lines") == [(0,)]
    with pytest.raises(ConfigError, match="archive"):
        conn.delete("accounts", ["1"], DeleteMode.ARCHIVE)


def test_a_delete_that_finds_no_row_is_not_found_and_the_others_are_applied(db):
    url, tables, connect = db
    conn = connect()
    written = conn.upsert("customers", [{"crm_ref": r, "name": r} for r in ("C-1", "C-2", "C-3")])
    ids = {w.key: w.target_id for w in written}
    other = sa.create_engine(url)
    with other.begin() as raw:                          # someone removed C-2 meanwhile
        raw.execute(sa.text("DELETE FROM customers WHERE crm_ref = 'C-2'"))
    other.dispose()
    for mode in (DeleteMode.ARCHIVE, DeleteMode.DELETE):
        outcome = conn.delete("customers", [ids["C-1"], ids["C-2"]], mode)
        assert [r.ok for r in outcome] == [True, False]
        assert outcome[1].error == f"not found: no record {ids['C-2']!r} in table customers"
    assert fetch(url, "SELECT crm_ref FROM customers") == [("C-3",)]
    gone = conn.delete("accounts", ["41"], DeleteMode.DELETE)   # by key, no id column
    assert (gone[0].action, gone[0].error) == (WriteAction.FAILED,
                                               "not found: no record '41' in table accounts")


def test_update_sets_fields_of_existing_rows_only(db):
    url, tables, connect = db
    conn = connect()
    conn.upsert("customers", [{"crm_ref": "C-1", "name": "One"}])
    results = conn.update("customers", [{"crm_ref": "C-1", "name": "Uno"},
                                        {"crm_ref": "C-404", "name": "Nobody"}])
    assert [r.action for r in results] == [WriteAction.UPDATED, WriteAction.FAILED]
    assert "C-404" in results[1].error
    assert sorted(fetch(url, "SELECT crm_ref, name FROM customers")) == [("C-1", "Uno")]


# -- configuration and errors ------------------------------------------------
def test_check_names_missing_table_and_column(db):
    _, _, connect = db
    connect().check()
    with pytest.raises(ConfigError, match="table 'contacts' does not exist"):
        connect(streams={"contacts": {"table": "contacts", "key": "id"}}).check()
    with pytest.raises(ConfigError, match="column 'modified'"):
        connect(streams={"accounts": {"table": "accounts", "key": "id",
                                      "cursor": "modified"}}).check()


def test_upsert_without_unique_key_is_refused_clearly(db):
    _, _, connect = db
    conn = connect(streams={"codes": {"table": "no_key", "key": "code"}})
    with pytest.raises(FatalError, match="no primary key or unique constraint on \\(code\\)"):
        conn.upsert("codes", [{"code": "x", "label": "y"}])


def test_streams_default_to_tables_with_primary_keys(db):
    url, tables, connect = db
    conn = connect(streams=None)
    infos = {s.name: s for s in conn.streams()}
    assert set(infos) == {"accounts", "deals", "deal_lines", "customers", "events"}
    assert infos["deal_lines"].key == ("deal_id", "line_no")
    insert(url, tables["deal_lines"], [{"deal_id": 1, "line_no": n, "sku": "S"}
                                       for n in (2, 1)])
    batches = list(conn.read("deal_lines", None, batch_size=1))
    assert [(r["deal_id"], r["line_no"]) for b in batches for r in b.rows] == [(1, 1), (1, 2)]
    assert set(conn.lookup("deal_lines", ["1|2"])) == {"1|2"}


def test_password_never_appears_in_errors_or_logs(caplog):
    secret = "S3cretPassw0rd"
    conn = create_connector("sql", {"url": f"postgresql+psycopg://bob:{secret}@127.0.0.1:1/x"})
    with caplog.at_level(logging.DEBUG), pytest.raises(FatalError) as info:
        conn.check()
    assert secret not in str(info.value)
    assert "bob:***@127.0.0.1:1/x" in str(info.value)
    assert secret not in caplog.text
    assert secret not in repr(conn.config)
    with pytest.raises(ConfigError) as bad:
        create_connector("sql", {"url": f"postgresql+psycopg://bob:{secret}@host:port/x"})
    assert secret not in str(bad.value)


def test_sqlite_text_timestamps_compare_as_times(sqlite_url):
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, changed TEXT)"))
        conn.execute(sa.text("CREATE TABLE d (id INTEGER PRIMARY KEY, changed DATETIME)"))
        for i, value in enumerate(["2024-01-01T10:00:00Z", "2024-01-01 10:00:00",
                                   "2024-01-01T10:00:00.000+00:00", "2024-01-01T09:59:59Z",
                                   "2024-01-01T10:00:01Z"], start=1):
            conn.execute(sa.text("INSERT INTO t VALUES (:i, :v)"), {"i": i, "v": value})
            conn.execute(sa.text("INSERT INTO d VALUES (:i, :v)"), {"i": i, "v": value})
    engine.dispose()
    streams = {"t": {"table": "t", "key": "id", "cursor": "changed"},
               "d": {"table": "d", "key": "id", "cursor": "changed"}}
    with create_connector("sql", {"url": sqlite_url, "streams": streams}) as conn:
        for stream in ("t", "d"):
            batches = list(conn.read(stream, Cursor("2024-01-01T10:00:00+00:00"), batch_size=2))
            assert keys_of(batches) == [1, 2, 3, 5], stream
            assert batches[-1].cursor.value == "2024-01-01T10:00:01+00:00"
        # a DATETIME column is parsed whatever its text looks like; TEXT stays text
        assert conn.lookup("d", ["1"])["1"]["changed"] == dt.datetime(2024, 1, 1, 10, tzinfo=UTC)
        assert conn.lookup("t", ["1"])["1"]["changed"] == "2024-01-01T10:00:00Z"


def test_duplicate_keys_in_one_batch_last_wins(db):
    url, _, connect = db
    result = connect().upsert("customers", [{"crm_ref": "C-1", "name": "first"},
                                            {"crm_ref": "C-1", "name": "second"}])
    assert [r.action for r in result] == [WriteAction.CREATED, WriteAction.UPDATED]
    assert result[0].target_id == result[1].target_id
    assert fetch(url, "SELECT crm_ref, name FROM customers") == [("C-1", "second")]


def test_sqlite_column_level_unique_is_an_upsert_key(tmp_path):
    """SQLite keeps a column-level UNIQUE as an automatic index that reflection
    leaves out; the connector still finds it and upserts on it."""
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customers (id INTEGER PRIMARY KEY, "
                             "ext_id VARCHAR(64) UNIQUE, name TEXT)")
    engine.dispose()
    conn = create_connector("sql", {"url": url, "streams": {
        "customers": {"table": "customers", "key": "ext_id", "id_column": "id"}}})
    try:
        conn.upsert("customers", [{"ext_id": "A-1", "name": "Alpha"},
                                  {"ext_id": "B-2", "name": "Beta"}])
        conn.upsert("customers", [{"ext_id": "A-1", "name": "Alpha GmbH"}])
    finally:
        conn.close()
    assert sorted(fetch(url, "SELECT ext_id, name FROM customers")) == [
        ("A-1", "Alpha GmbH"), ("B-2", "Beta")]

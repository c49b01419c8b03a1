"""The file connector on real CSV and JSON Lines files in a temporary directory."""

from __future__ import annotations

import json
import os
from decimal import Decimal

import pytest

from crm2erp.connectors import create_connector
from crm2erp.connectors.base import Cursor, DeleteMode, WriteAction
from crm2erp.connectors.cursortype import CursorType
from crm2erp.connectors.file import FileConnector
from crm2erp.connectors.file.formats import write_table
from crm2erp.errors import ConfigError

CSV = """id,name,updated_at
2,Beta,2024-01-01T10:00:00Z
10,Ten,2024-01-01T10:00:00+00:00
1,Alpha,2024-01-01T09:00:00Z
3,,2024-01-02T00:00:00
4,NoCursor,
"""


def connector(path, **settings) -> FileConnector:
    return create_connector("file", {"path": str(path)} | settings)


@pytest.fixture
def accounts_csv(tmp_path):
    (tmp_path / "accounts.csv").write_text(CSV, encoding="utf-8")
    return tmp_path


def ids(batches) -> list[str]:
    return [row["id"] for batch in batches for row in batch.rows]


def test_csv_full_read_sorts_by_cursor_then_numeric_key(accounts_csv):
    conn = connector(accounts_csv, streams={"accounts": {"file": "accounts.csv",
                                                         "cursor": "updated_at"}})
    batches = list(conn.read("accounts", None, batch_size=2))
    assert ids(batches) == ["4", "1", "2", "10", "3"]
    assert batches[0].cursor == Cursor("2024-01-01T09:00:00+00:00", "1")
    assert batches[-1].cursor == Cursor("2024-01-02T00:00:00+00:00", "3")
    rows = {row["id"]: row for b in batches for row in b.rows}
    assert rows["3"]["name"] is None  # "" reads as None
    assert rows["2"]["name"] == "Beta"


def test_csv_incremental_read_is_inclusive_and_compares_instants(accounts_csv):
    conn = connector(accounts_csv, timezone="UTC",
                     streams={"accounts": {"file": "accounts.csv", "cursor": "updated_at"}})
    since = Cursor("2024-01-01T12:00:00+02:00")  # = 10:00 UTC
    assert ids(conn.read("accounts", since, batch_size=1)) == ["2", "10", "3"]
    assert ids(conn.read("accounts", Cursor("2024-01-02T00:00:01Z"))) == []


def test_streams_default_to_files_in_directory(accounts_csv):
    (accounts_csv / "deals.jsonl").write_text('{"id": 1}\n', encoding="utf-8")
    (accounts_csv / "notes.txt").write_text("ignored", encoding="utf-8")
    conn = connector(accounts_csv)
    infos = {s.name: s for s in conn.streams()}
    assert set(infos) == {"accounts", "deals"}
    assert infos["accounts"].key == ("id",)
    assert ids(conn.read("accounts", None)) == ["1", "2", "3", "4", "10"]


def test_csv_upsert_created_updated_unchanged_and_column_order(accounts_csv):
    conn = connector(accounts_csv, streams={"accounts": {"file": "accounts.csv",
                                                         "cursor": "updated_at"}})
    result = conn.upsert("accounts", [
        {"id": 2, "name": "Beta"},
        {"id": 1, "name": "Alpha Prime", "segment": "B2B"},
        {"id": 11, "name": "Eleven", "updated_at": "2024-02-01T00:00:00Z",
         "limit": Decimal("10.50")},
        {"name": "keyless"},
    ])
    assert [r.action for r in result] == [WriteAction.UNCHANGED, WriteAction.UPDATED,
                                          WriteAction.CREATED, WriteAction.FAILED]
    assert result[2].target_id == "11"
    assert "key" in result[3].error
    lines = (accounts_csv / "accounts.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,name,updated_at,segment,limit"
    assert lines[1] == "2,Beta,2024-01-01T10:00:00Z,,"
    assert lines[3] == "1,Alpha Prime,2024-01-01T09:00:00Z,B2B,"
    assert lines[-1] == "11,Eleven,2024-02-01T00:00:00Z,,10.50"
    again = conn.upsert("accounts", [{"id": 11, "name": "Eleven", "limit": "10.50"}])
    assert again[0].action is WriteAction.UNCHANGED
    assert conn.lookup("accounts", ["11", "99"]) == {"11": {
        "id": "11", "name": "Eleven", "updated_at": "2024-02-01T00:00:00Z",
        "segment": None, "limit": "10.50"}}


def test_jsonl_read_upsert_keeps_nested_values(tmp_path):
    path = tmp_path / "deals.jsonl"
    path.write_text('{"id": 1, "amount": 5, "lines": [{"sku": "A"}]}\n'
                    '\n{"id": 2, "amount": 7}\n', encoding="utf-8")
    conn = connector(tmp_path, streams={"deals": {"file": "deals.jsonl", "cursor": "amount"}})
    batches = list(conn.read("deals", Cursor(6)))
    assert [r["id"] for r in batches[0].rows] == [2]
    assert batches[0].cursor == Cursor(7, "2")
    result = conn.upsert("deals", [{"id": 1, "lines": [{"sku": "A"}, {"sku": "B"}]},
                                   {"id": 3, "amount": Decimal("1.5"), "meta": {"x": [1]}}])
    assert [r.action for r in result] == [WriteAction.UPDATED, WriteAction.CREATED]
    stored = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert stored == [{"id": 1, "amount": 5, "lines": [{"sku": "A"}, {"sku": "B"}]},
                      {"id": 2, "amount": 7},
                      {"id": 3, "amount": "1.5", "meta": {"x": [1]}}]
    assert conn.upsert("deals", [{"id": 3, "meta": {"x": [1]}}])[0].action \
        is WriteAction.UNCHANGED


def test_upsert_into_missing_file_creates_it(tmp_path):
    conn = connector(tmp_path, streams={"out": {"file": "out.csv", "key": ["a", "b"]}})
    result = conn.upsert("out", [{"a": 1, "b": "x", "v": True}])
    assert result[0].key == "1|x" and result[0].action is WriteAction.CREATED
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == "a,b,v\n1,x,true\n"
    assert list(conn.lookup("out", ["1|x"])) == ["1|x"]


def test_rewrite_is_atomic_and_leaves_no_temp_files(accounts_csv, monkeypatch):
    path = accounts_csv / "accounts.csv"
    conn = connector(accounts_csv)
    conn.upsert("accounts", [{"id": 1, "name": "changed"}])
    assert sorted(os.listdir(accounts_csv)) == ["accounts.csv"]

    def crash(*_args):
        raise OSError("disk full")

    before = path.read_text(encoding="utf-8")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        conn.upsert("accounts", [{"id": 1, "name": "lost"}])
    assert path.read_text(encoding="utf-8") == before
    assert sorted(os.listdir(accounts_csv)) == ["accounts.csv"]


def test_write_table_replaces_the_inode(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id\n1\n", encoding="utf-8")
    inode = path.stat().st_ino
    write_table(path, "csv", ["id"], [{"id": "2"}], "utf-8", ",")
    assert path.stat().st_ino != inode  # renamed over, not rewritten in place
    assert path.read_text(encoding="utf-8") == "id\n2\n"


def test_delete_modes(accounts_csv):
    conn = connector(accounts_csv, streams={
        "accounts": {"file": "accounts.csv", "archive": {"column": "active", "value": False}},
        "plain": {"file": "accounts.csv"}})
    assert conn.delete("accounts", ["1"], DeleteMode.IGNORE)[0].action is WriteAction.UNCHANGED
    archived = conn.delete("accounts", ["1", "99"], DeleteMode.ARCHIVE)
    assert [r.action for r in archived] == [WriteAction.UPDATED, WriteAction.FAILED]
    assert archived[1].error.startswith("not found") and "accounts.csv" in archived[1].error
    assert conn.lookup("accounts", ["1"])["1"]["active"] == "false"
    assert conn.lookup("accounts", ["2"])["2"]["active"] is None
    deleted = conn.delete("accounts", ["2", "10"], DeleteMode.DELETE)
    assert [r.action for r in deleted] == [WriteAction.UPDATED, WriteAction.UPDATED]
    assert ids(conn.read("accounts", None)) == ["1", "3", "4"]
    with pytest.raises(ConfigError, match="archive"):
        conn.delete("plain", ["1"], DeleteMode.ARCHIVE)


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        connector(tmp_path / "missing").check()
    conn = connector(tmp_path, streams={"a": {"file": "a.csv"}, "b": {"file": "b.dat"}})
    with pytest.raises(ConfigError, match="a.csv"):
        list(conn.read("a"))
    with pytest.raises(ConfigError, match="format"):
        conn.check()
    with pytest.raises(ConfigError, match="no stream 'zz'"):
        conn.lookup("zz", [])
    with pytest.raises(ConfigError, match="file name inside"):
        connector(tmp_path, streams={"a": {"file": "../etc/passwd"}})


# -- typed cursors and bad records (issue 10) --------------------------------
def test_jsonl_bad_lines_are_rejected_with_their_line(tmp_path):
    (tmp_path / "deals.jsonl").write_text(
        '{"id": 1, "amount": 5}\nnot json\n[1, 2]\n{"id": 2, "amount": "n/a"}\n'
        '{"id": 3, "amount": 9}\n', encoding="utf-8")
    conn = connector(tmp_path, streams={"deals": {"file": "deals.jsonl", "cursor": "amount"}})
    batches = list(conn.read("deals", None))
    assert [r["id"] for b in batches for r in b.rows] == [1, 3]
    rejected = [r for b in batches for r in b.rejected]
    assert [(r.where, r.key) for r in rejected] == [
        ("deals.jsonl:2", ""), ("deals.jsonl:3", ""), ("deals.jsonl:4", "2")]
    assert "not valid JSON" in rejected[0].reason and "'n/a'" in rejected[2].reason
    assert batches[-1].cursor == Cursor(9, "3")


def test_declared_integer_cursor_orders_numerically_and_rejects_the_rest(tmp_path):
    (tmp_path / "a.csv").write_text("id,seq\n1,10\n2,9\n3,1.5\n4,x\n5,10\n", encoding="utf-8")
    conn = connector(tmp_path, streams={"a": {"file": "a.csv", "cursor": "seq"}})
    conn.declare_cursor("a", CursorType("integer"))
    batches = list(conn.read("a", Cursor(9)))
    assert ids(batches) == ["2", "1", "5"]
    assert sorted(r.key for b in batches for r in b.rejected) == ["3", "4"]
    assert batches[-1].cursor == Cursor(10, "5")


def test_a_value_of_another_kind_than_the_watermark_is_rejected(accounts_csv):
    conn = connector(accounts_csv, streams={"accounts": {"file": "accounts.csv",
                                                         "cursor": "updated_at"}})
    (accounts_csv / "accounts.csv").write_text(CSV + "5,Num,20240102\n", encoding="utf-8")
    batches = list(conn.read("accounts", Cursor("2024-01-01T10:00:00+00:00")))
    assert ids(batches) == ["2", "10", "3"]
    assert [r.key for b in batches for r in b.rejected] == ["5"]


def test_no_row_of_a_key_on_more_than_one_line_is_read(tmp_path):
    (tmp_path / "a.csv").write_text(
        "id,name,updated_at\n7,First,2024-01-01T09:00:00Z\n8,Other,2024-01-01T09:30:00Z\n"
        "7,Second,2024-01-02T09:00:00Z\n7,Third,2024-01-03T09:00:00Z\n", encoding="utf-8")
    conn = connector(tmp_path, streams={"a": {"file": "a.csv", "cursor": "updated_at"}})
    for since, size in ((None, 1), (None, 10), (Cursor("2024-01-01T09:15:00Z"), 1)):
        batches = list(conn.read("a", since, batch_size=size))
        rejected = sorted((r.where, r.key, r.raw["name"]) for b in batches for r in b.rejected)
        first = [("a.csv:2", "7", "First")] if since is None else []  # else below the watermark
        assert rejected == first + [("a.csv:4", "7", "Second"), ("a.csv:5", "7", "Third")]
        assert all("is on more than one row of a.csv (first on line 2)" in r.reason
                   for b in batches for r in b.rejected)
        assert ids(batches) == ["8"]
        assert [b.cursor for b in batches if b.cursor] == [Cursor("2024-01-01T09:30:00+00:00", "8")]


def test_a_frozen_text_watermark_is_a_config_error_saying_how_to_restart(accounts_csv):
    conn = connector(accounts_csv, streams={"accounts": {"file": "accounts.csv",
                                                         "cursor": "updated_at"}})
    with pytest.raises(ConfigError) as info:
        list(conn.read("accounts", Cursor("n/a")))
    assert "'n/a'" in str(info.value) and "--full-refresh" in str(info.value)


def test_lookup_skips_unreadable_records(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"id,name\n1,A\n2,\xff\n3,C\n")
    conn = connector(tmp_path)
    assert set(conn.lookup("a", ["1", "2", "3"])) == {"1", "3"}

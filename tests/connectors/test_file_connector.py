"""The file connector on real CSV and JSON Lines files in a temporary directory."""

from __future__ import annotations

import json
import os
from decimal import Decimal

import pytest

from crm2erp.connectors import create_connector
from crm2erp.connectors.base import Cursor, DeleteMode, WriteAction
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

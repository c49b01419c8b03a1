"""Toolkit pieces the ERPNext connector brought in: changed fields with child tables, a
JSON body from bytes, and connectors that refuse writes to read-only streams up front."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from crm2erp.connectors.base import StreamInfo
from crm2erp.connectors.toolkit.connector import GuardedWriteBackConnector
from crm2erp.connectors.toolkit.errors import json_or_none
from crm2erp.connectors.toolkit.streams import ApiConnectionConfig, ApiStreamConfig
from crm2erp.connectors.toolkit.values import changed_fields, same_rows


def test_changed_fields_sends_what_differs_and_child_tables_whole():
    current = {"name": "C-1", "tax_id": "DE1", "limit": "12.50", "note": None,
               "items": [{"name": "r1", "idx": 1, "item_code": "A", "qty": "2.0"}]}
    same = {"tax_id": "DE1", "limit": Decimal("12.5"), "note": "",
            "items": [{"item_code": "A", "qty": 2}]}
    assert changed_fields(current, same, tables=["items"]) == {}
    desired = {"tax_id": "DE2", "limit": 12.5, "items": [{"item_code": "A", "qty": 3}],
               "extra": None}
    assert changed_fields(current, desired, tables=["items"]) == {
        "tax_id": "DE2", "items": [{"item_code": "A", "qty": 3}]}
    # a child table: one row more or less is a change; None is no rows
    assert changed_fields(current, {"items": None}, tables=["items"]) == {"items": []}
    assert changed_fields({"items": None}, {"items": []}, tables=["items"]) == {}
    # without tables a list is a plain value
    assert changed_fields(current, {"items": [{"item_code": "A"}]}) == {
        "items": [{"item_code": "A"}]}


def test_changed_fields_compares_with_the_connectors_same():
    def as_text(current, sent):
        return str(current) == (sent.isoformat() if isinstance(sent, dt.date) else str(sent))

    day = dt.date(2024, 6, 3)
    assert changed_fields({"on": "2024-06-03"}, {"on": day}, same=as_text) == {}
    assert same_rows([{"on": "2024-06-03", "idx": 1}], [{"on": day}], as_text)
    assert not same_rows([{"on": "2024-06-03"}], [{"on": day}, {"on": day}], as_text)


@pytest.mark.parametrize(("content", "expected"), [
    (b'{"exc_type": "X"}', {"exc_type": "X"}), ('[1, 2]', [1, 2]), (b"", None),
    (None, None), (b"<html>Bad Gateway</html>", None)])
def test_json_or_none_reads_a_json_body_from_its_bytes(content, expected):
    assert json_or_none(content) == expected


class Stream(ApiStreamConfig):
    table: str | None = None


class Connection(ApiConnectionConfig):
    streams: dict[str, Stream] = {"orders": Stream(table="order"), "lines": Stream()}


class Writer:
    def __init__(self, *args):
        self.calls = []

    def upsert(self, name, stream, rows):
        self.calls.append(("upsert", name, stream.table, rows))
        return ["done"]

    def update(self, name, stream, rows):
        self.calls.append(("update", name, stream.table, rows))
        return ["set"]


class Orders(GuardedWriteBackConnector):
    name = "orders"
    system = "Orders API"
    read_only = "is read-only (no table)"
    Config = Connection
    build_client = staticmethod(lambda config, **options: "client")
    Reader = Writer
    Writer = Writer

    def stream_info(self, name, stream):
        return StreamInfo(name=name, key=("id",), writable=stream.table is not None)


def test_guarded_connector_hands_writes_on_and_refuses_read_only_streams_before_sending():
    connector = Orders(Connection())
    assert connector.upsert("orders", [{"id": 1}]) == ["done"]
    assert connector.update("orders", [{"id": 1}]) == ["set"]
    assert connector.writer.calls == [("upsert", "orders", "order", [{"id": 1}]),
                                      ("update", "orders", "order", [{"id": 1}])]
    for write in (connector.upsert, connector.update):
        with pytest.raises(NotImplementedError, match=r"'lines' is read-only \(no table\)$"):
            write("lines", [{"id": 2}])
    assert len(connector.writer.calls) == 2

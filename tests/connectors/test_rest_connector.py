"""The declarative REST connector's pieces: cursor formats, paginators, write modes."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

import pytest

from crm2erp.connectors import create_connector
from crm2erp.connectors.base import Cursor, WriteAction
from crm2erp.connectors.rest.config import CursorConfig, RestConfig
from crm2erp.connectors.rest.source import CursorCodec, apply_rename, nest, select_records
from crm2erp.connectors.rest.target import unstored
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.errors import ConfigError, FatalError
from crm2erp.mapping.validation import validate_doc
from crm2erp.mapping.yamlpos import load_yaml

ITEMS = [{"id": i, "attributes": {"title": f"Item {i}"}, "changed": 1_700_000_000 + i // 3,
          "gone": i == 4} for i in range(1, 12)]


class GenericApi:
    """A small JSON API with every paging style and an upsert/batch write endpoint."""

    def __init__(self):
        self.store: dict[str, dict] = {}
        self.requests: list[str] = []

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        q = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        self.requests.append(f"{environ['REQUEST_METHOD']} {path}?{environ['QUERY_STRING']}")
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(size) or b"null") if size else None
        status, out = "200 OK", None
        items = [i for i in ITEMS if "since" not in q or i["changed"] >= int(q["since"])]
        # the API answers newest first: the connector must not rely on the order
        items = sorted(items, key=lambda i: -i["id"])
        if path == "/cursor":
            start = int(q.get("after", 0))
            page = items[start:start + 4]
            more = start + 4 < len(items)
            out = {"results": page, "paging": {"next": {"after": start + 4} if more else None}}
            out["paging"] = {"next": {"after": str(start + 4)}} if more else {}
        elif path == "/links":
            start = int(q.get("from", 0))
            nxt = f"/links?from={start + 5}" if start + 5 < len(items) else None
            out = {"data": {"rows": items[start:start + 5]}, "links": {"next": nxt}}
        elif path == "/pages":
            # position paging needs an order that holds still: ascending by id, or as asked
            items.sort(key=lambda i: i["id"], reverse=q.get("sort") == "newest")
            page = int(q["page"])
            out = items[(page - 1) * 3: page * 3]
        elif path.startswith("/things/") and environ["REQUEST_METHOD"] == "PUT":
            key = path[len("/things/"):]
            if not body.get("title"):
                status, out = "422 Unprocessable Entity", {"message": "title is required"}
            else:
                # like many APIs, fields it does not know are dropped without a word
                known = {k: v for k, v in body.items() if k in ("code", "title", "extra")}
                if isinstance(known.get("extra"), dict):
                    known["extra"] = {k: v for k, v in known["extra"].items() if k == "erp"}
                status = "200 OK" if key in self.store else "201 Created"
                self.store[key] = {"id": f"T{len(self.store) + 1}" if key not in self.store
                                   else self.store[key]["id"], **known}
                out = self.store[key]
        elif path.startswith("/things/") and environ["REQUEST_METHOD"] == "GET":
            found = self.store.get(path[len("/things/"):])
            status, out = ("200 OK", {"item": found}) if found else \
                ("404 Not Found", {"message": "no such thing"})
        elif path == "/things/batch":
            out = {"results": []}
            for record in body["records"]:
                if not record.get("title"):
                    out["results"].append({"error": "title is required"})
                    continue
                created = record["code"] not in self.store
                self.store.setdefault(record["code"], {"id": f"B{len(self.store) + 1}"})
                self.store[record["code"]].update(record)
                out["results"].append({"id": self.store[record["code"]]["id"],
                                       "created": created})
        elif path == "/quota":
            status, out = "429 Too Many Requests", {"message": "monthly quota exhausted"}
        else:
            status, out = "404 Not Found", {"message": "no such path"}
        data = json.dumps(out).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(data)))])
        return [data]


@pytest.fixture
def api():
    app = GenericApi()
    with serve_wsgi(app) as url:
        app.url = url
        yield app


def connector(url, **streams):
    settings = {"base_url": url, "auth": {"type": "bearer", "token": "t0ken"},
                "retry": {"max_attempts": 2, "backoff_base": 0.001, "backoff_max": 0.01},
                "errors": [{"status": 429, "body_contains": "quota", "action": "fatal",
                            "message": "quota exhausted"}],
                "streams": streams}
    return create_connector("rest", settings)


EPOCH = {"field": "changed", "param": "since", "format": "epoch"}


@pytest.mark.parametrize("stream", [
    {"path": "/cursor", "records": "results", "paginator": {
        "type": "cursor", "cursor_path": "paging.next.after", "param": "after"}},
    {"path": "/links", "records": "data.rows", "paginator": {"type": "next_link",
                                                              "next": "links.next"}},
    {"path": "/pages", "paginator": {"type": "page", "size": 3, "order_by": "id"}},
])
def test_every_paginator_reads_all_rows_in_cursor_order(api, stream):
    with connector(api.url, items={**stream, "cursor": EPOCH, "deleted": {"field": "gone"},
                                   "rename": {"attributes": "attrs"}}) as conn:
        batches = list(conn.read("items", batch_size=4))
        rows = [r for b in batches for r in b.rows]
        assert [r["id"] for r in rows] == [i for i in range(1, 12) if i != 4]
        assert rows[0]["attrs"]["title"] == "Item 1"               # renamed, nested kept
        assert [k for b in batches for k in b.deleted_keys] == ["4"]
        resumed = list(conn.read("items", batches[1].cursor))
        assert [r["id"] for b in resumed for r in b.rows] == [9, 10, 11]
        # the cursor went to the API as epoch seconds: only recent items were sent
        assert any("since=1700000002" in r for r in api.requests)


def test_cursor_formats_parse_and_format_both_ways():
    local = CursorCodec(CursorConfig(field="t", format="%d.%m.%Y %H:%M",
                                     timezone="Europe/Berlin", exclusive=True))
    assert local.position("01.07.2025 10:30") == "2025-07-01T08:30:00.000000Z"
    assert local.param(Cursor("2025-07-01T08:30:00Z")) == "01.07.2025 10:29"
    millis = CursorCodec(CursorConfig(field="t", format="epoch_ms"))
    assert millis.position(1_700_000_000_000) == "2023-11-14T22:13:20.000000Z"
    assert millis.param(Cursor("2023-11-14T22:13:20Z")) == 1_700_000_000_000
    seq = CursorCodec(CursorConfig(field="v", format="number"))
    assert seq.position("42") == 42 and seq.since_position(Cursor(42)) == 42
    with pytest.raises(FatalError, match="does not match format"):
        local.position("2025-07-01")


def test_upsert_and_batch_write_modes_report_created_updated_failed(api):
    streams = {
        "things": {"path": "/things", "key": "code",
                   "write": {"mode": "upsert", "key": "code", "path": "/things/{key}",
                             "error_path": "message"}},
        "bulk": {"path": "/things", "key": "code",
                 "write": {"mode": "batch", "key": "code",
                           "batch": {"path": "/things/batch", "size": 2,
                                     "results": "results"}}}}
    with connector(api.url, **streams) as conn:
        rows = [{"code": "a/1", "title": "A"}, {"code": "b", "title": ""},
                {"code": "c", "title": "C"}]
        first = conn.upsert("things", rows)
        assert [r.action for r in first] == [WriteAction.CREATED, WriteAction.FAILED,
                                             WriteAction.CREATED]
        assert first[1].error == "HTTP 422: title is required"
        assert set(api.store) == {"a/1", "c"}                 # key quoted into the path
        again = conn.upsert("things", rows[:1])
        assert again[0].action is WriteAction.UPDATED and again[0].target_id == \
            first[0].target_id
        batch = conn.upsert("bulk", [{"code": "x", "title": "X"}, {"code": "y"},
                                     {"code": "x", "title": "X2"}])
        assert [r.action for r in batch] == [WriteAction.CREATED, WriteAction.FAILED,
                                             WriteAction.UPDATED]
        assert batch[1].error == "title is required"
        assert batch[0].target_id == batch[2].target_id


def test_error_rules_misconfigured_selectors_and_read_only_streams(api):
    with connector(api.url, quota={"path": "/quota"}) as conn:
        with pytest.raises(FatalError, match="quota exhausted"):
            list(conn.read("quota"))
    with connector(api.url, wrong={"path": "/links", "records": "data.nope"}) as conn:
        with pytest.raises(ConfigError, match=r"no records at 'data.nope' \(data holds: rows\)"):
            conn.check()
        with pytest.raises(ConfigError, match="data.nope"):
            list(conn.read("wrong"))
        with pytest.raises(NotImplementedError):
            conn.upsert("wrong", [{"id": 1}])
    with pytest.raises(ConfigError, match="needs a path containing"):
        create_connector("rest", {"base_url": api.url, "streams": {"s": {
            "path": "/x", "write": {"mode": "upsert", "key": "k", "path": "/x"}}}})
    assert RestConfig.model_validate({"base_url": "http://h", "streams": {"s": {
        "path": "/x"}}}).streams["s"].paginator.type == "none"


@pytest.mark.parametrize("body,path,found", [
    ({"data": [{"id": 1}]}, "data", [{"id": 1}]),
    ({"success": True, "data": None}, "data", []),       # Pipedrive's "nothing found"
    ({}, "data", []), (None, "data", []), ([], None, []),
    ([{"id": 1}], None, [{"id": 1}]),
    ({"results": {"items": [{"id": 2}]}}, "results.items", [{"id": 2}]),
])
def test_records_found_or_empty(body, path, found):
    assert select_records(body, path, "crm: stream 's'") == found


@pytest.mark.parametrize("body,path,message", [
    ({"success": True, "data": [], "additional_data": {}}, "items",
     "no records at 'items' (the reply holds: success, data, additional_data)"),
    ({"results": {"total": 3}}, "results.items", "no records at 'results.items' "
                                                  "(results holds: total)"),
    ({"results": [1]}, "results.items", "no records at 'results.items' (results holds: a list)"),
    ({"data": {"id": 1}}, "data", "data is a dict, not a list of records (keys: id)"),
    ({"id": 1, "name": "x"}, None, "the reply is a dict, not a list of records (keys: id, name)"),
])
def test_a_reply_without_the_records_path_is_a_configuration_error(body, path, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        select_records(body, path, "crm: stream 's'")


def test_dotted_renames_read_nested_fields_and_write_them_back_nested():
    record = {"id": 7, "address": {"locality": "Wien", "route": "Ring 1"},
              "custom_fields": {"abc": "E-1", "other": 2}, "name": "Havel"}
    rename = {"custom_fields.abc": "erp_id", "address.locality": "city", "name": "title"}
    row = apply_rename(record, rename)
    assert row == {"id": 7, "address": {"route": "Ring 1"}, "custom_fields": {"other": 2},
                   "title": "Havel", "erp_id": "E-1", "city": "Wien"}
    assert record["custom_fields"] == {"abc": "E-1", "other": 2}   # the input is kept
    back = nest(apply_rename({"id": 7, "erp_id": "E-2"}, {v: k for k, v in rename.items()}))
    assert back == {"id": 7, "custom_fields": {"abc": "E-2"}}
    # a write-back row names the nested field directly
    assert nest({"id": 7, "custom_fields.abc": "E-3"}) == {"id": 7, "custom_fields": {"abc": "E-3"}}


def test_verify_turns_a_write_the_api_did_not_store_into_a_failure(api):
    write = {"mode": "upsert", "key": "code", "path": "/things/{key}", "error_path": "message"}
    streams = {
        "reply": {"path": "/things", "key": "code", "rename": {"extra.erp": "erp_id"},
                  "write": {**write, "verify": {"record": None}}},
        "reread": {"path": "/things", "key": "code",
                   "write": {**write, "verify": {"read_back": "/things/{key}",
                                                 "record": "item", "ignore": ["id"]}}},
        "trusting": {"path": "/things", "key": "code", "write": write}}
    with connector(api.url, **streams) as conn:
        rows = [{"code": "a", "title": "A", "erp_id": "E-1"},          # nested, stored
                {"code": "b", "title": "B", "colour": "red"},          # dropped by the API
                {"code": "c", "title": "C", "extra.erp": "E-3", "extra.colour": "blue"}]
        results = conn.upsert("reply", rows)
        assert api.store["a"]["extra"] == {"erp": "E-1"}
        assert [r.action for r in results] == [WriteAction.CREATED, WriteAction.FAILED,
                                               WriteAction.FAILED]
        assert results[1].error == ("the API accepted the write but did not store colour "
                                    "(sent 'red', it holds None)")
        assert "extra.colour (sent 'blue', it holds None)" in results[2].error
        assert "extra.erp" not in results[2].error
        again = conn.upsert("reread", [{"code": "a", "title": "A2", "amount": 3}])
        assert again[0].action is WriteAction.FAILED and "amount (sent 3" in again[0].error
        assert conn.upsert("reread", [{"code": "a", "title": "A3"}])[0].ok
        # without verify a 200 is taken on trust (and the field is lost)
        assert conn.upsert("trusting", [{"code": "d", "title": "D", "colour": "x"}])[0].ok
        assert "colour" not in api.store["d"]


def test_verify_compares_numbers_as_numbers_and_empty_as_null():
    assert unstored({"a": 1, "b": "", "c": {"d": 2.50}}, {"a": "1", "b": None,
                                                          "c": {"d": 2.5}}) == []
    assert unstored({"a": True}, {"a": 1}) == ["a (sent True, it holds 1)"]
    assert unstored({"a": "x"}, {"a": "X"}, ignore=["a"]) == []


def test_position_paging_refuses_an_order_that_moves(api):
    with pytest.raises(ConfigError, match="page paging needs order_by"):
        connector(api.url, items={"path": "/pages", "paginator": {"type": "page", "size": 3}})
    with pytest.raises(ConfigError, match="'changed' is the cursor field"):
        connector(api.url, items={"path": "/pages", "cursor": EPOCH, "paginator": {
            "type": "page", "size": 3, "order_by": "changed"}})
    with connector(api.url, items={"path": "/pages", "params": {"sort": "newest"},
                                   "paginator": {"type": "page", "size": 3,
                                                 "order_by": "id"}}) as conn:
        with pytest.raises(ConfigError, match=r"not sorted by 'id' ascending \(10 came after 11\)"):
            list(conn.read("items"))


SETTINGS_WITH_TYPOS = """\
base_url: https://crm.example.com
streams:
  organizations:
    path: /v1/organizations
    recrods: data
    paginator:
      type: offset
      has_mor: more
      order_by: id
    write:
      mode: upsert
      key: id
      path: /v1/organizations/{key}
      verify: {recrod: data}
  people:
    path: /v1/persons
    paginator: {type: page}
"""


def test_settings_are_checked_with_file_line_column_and_a_did_you_mean():
    doc = load_yaml("connections.yaml", text=SETTINGS_WITH_TYPOS)
    config, issues = validate_doc(doc, RestConfig)
    assert config is None
    assert sorted(str(i) for i in issues) == [
        "connections.yaml:14:16: unknown key 'recrod' in streams.organizations.write.verify; "
        "did you mean 'record'?",
        "connections.yaml:17:16: streams.people.paginator: page paging needs order_by: the "
        "field the API sorts this listing by, ascending; it must never change (an id or a "
        "creation time) so that records added during a run come last. Sort the listing by "
        "its id (params) and name that field here, or use cursor or next_link paging; "
        "paging by position over an order that changes can skip records",
        "connections.yaml:5:5: unknown key 'recrods' in streams.organizations; did you mean "
        "'records'?",
        "connections.yaml:8:7: unknown key 'has_mor' in streams.organizations.paginator; "
        "did you mean 'has_more'?",
    ]

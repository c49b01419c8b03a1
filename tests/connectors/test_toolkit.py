"""The connector toolkit: timestamp cursors, merged batches, the batch upsert loop,
the shared config types."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from crm2erp.connectors.base import Batch, Cursor, DeleteMode, WriteAction, WriteResult
from crm2erp.connectors.toolkit import config as toolkit
from crm2erp.connectors.toolkit.children import children_by_parent, embed_children
from crm2erp.connectors.toolkit.errors import status_text
from crm2erp.connectors.toolkit.odata import odata_string
from crm2erp.connectors.toolkit.ordering import OrderedBatcher, merged_batches
from crm2erp.connectors.toolkit.timestamps import iso_millis, utc_instant, utc_text
from crm2erp.connectors.toolkit.values import same_value
from crm2erp.connectors.toolkit.writer import delete_in_batches, write_in_batches
from crm2erp.errors import ConfigError, FatalError


@pytest.mark.parametrize("value,expected", [
    ("2026-03-01T10:00:00Z", "2026-03-01T10:00:00.000Z"),
    ("2026-03-01T12:00:00.1234+02:00", "2026-03-01T10:00:00.123Z"),
    ("2026-03-01 10:00:00", "2026-03-01T10:00:00.000Z"),          # naive = UTC
    (dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC), "2026-03-01T10:00:00.000Z"),
    ("1772359200000", "2026-03-01T10:00:00.000Z"),                 # epoch milliseconds
])
def test_iso_millis_is_fixed_width_utc(value, expected):
    assert iso_millis(value) == expected


@pytest.mark.parametrize("bad", ["n/a", "yesterday", "01/02/2026", "", None, {"a": 1}])
def test_a_value_that_is_not_a_timestamp_raises_the_connectors_error(bad):
    with pytest.raises(FatalError, match="SAP cursor value .* is not an ISO-8601 timestamp"):
        utc_instant(bad, "SAP cursor value")
    with pytest.raises(ConfigError):
        utc_instant(bad, error=ConfigError)


def test_naive_values_are_in_the_given_zone():
    zone = dt.timezone(dt.timedelta(hours=2))
    assert utc_instant("2026-03-01 12:00:00", zone=zone) == dt.datetime(2026, 3, 1, 10,
                                                                        tzinfo=dt.UTC)
    assert utc_text(dt.datetime(2026, 3, 1, 10, 0, 5, 999999), millis=False) == \
        "2026-03-01T10:00:05Z"


positions = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30)), unique=True,
                     max_size=40)


@given(rows=positions, gone=positions, size=st.integers(1, 7), cut=st.integers(0, 80))
def test_merged_batches_resume_exactly_after_any_batch(rows, gone, size, cut):
    gone = [p for p in gone if p not in rows]

    def sources():
        def item(p, deleted):
            position = (f"2026-01-01T00:00:0{p[0]}.000Z", f"k{p[1]:02d}")
            return (position, None, position[1]) if deleted else (position, {"id": position[1]},
                                                                  None)
        return [[item(p, False) for p in sorted(rows)], [item(p, True) for p in sorted(gone)]]

    batches = list(merged_batches(sources(), None, "", size))
    seen = [(b.cursor.value, b.cursor.key) for b in batches]
    assert seen == sorted(seen)
    keys = [(r["id"], False) for b in batches for r in b.rows] + \
        [(k, True) for b in batches for k in b.deleted_keys]
    assert len(keys) == len(rows) + len(gone)
    if not batches:
        return
    at = cut % len(batches)
    resumed = list(merged_batches(sources(), batches[at].cursor, batches[at].cursor.value, size))
    after = [r["id"] for b in batches[at + 1:] for r in b.rows]
    assert [r["id"] for b in resumed for r in b.rows] == after


def test_write_in_batches_answers_in_row_order_and_never_sends_a_row_without_key():
    calls = []

    def send(chunk):
        calls.append([row["ext"] for row in chunk])
        return [WriteResult(row["ext"], WriteAction.CREATED, target_id=f"T{row['ext']}")
                for row in chunk]

    rows = [{"ext": "a"}, {"ext": ""}, {"ext": "b", "Id": "x"}, {"ext": "c"}, {},
            {"ext": "a"}, {"ext": "d"}]
    results = write_in_batches(rows, lambda row: row.get("ext"), send, size=2,
                               missing="ext is empty",
                               refuse=lambda row: "no Id" if "Id" in row else None,
                               distinct_keys=True)
    assert calls == [["a", "c"], ["a", "d"]]     # a repeated key starts a new call
    assert [(r.key, r.action, r.error) for r in results] == [
        ("a", WriteAction.CREATED, None), ("", WriteAction.FAILED, "ext is empty"),
        ("b", WriteAction.FAILED, "no Id"), ("c", WriteAction.CREATED, None),
        ("", WriteAction.FAILED, "ext is empty"), ("a", WriteAction.CREATED, None),
        ("d", WriteAction.CREATED, None)]


LowerName = toolkit.name_type(re.compile(r"^[a-z_]+$"), "a lower-case name")
ApiUrl = toolkit.web_url("https://api.example.com")


class _Conf(toolkit.StrictModel):
    base_url: ApiUrl
    object_name: LowerName | None = None


def test_config_types_say_what_is_wrong():
    conf = _Conf(base_url="https://x.example/", object_name="deals")
    assert (conf.base_url, conf.object_name) == ("https://x.example", "deals")
    with pytest.raises(ValidationError, match="base_url must look like https://api.example"):
        _Conf(base_url="x.example")
    with pytest.raises(ValidationError, match="'Deals' is not a lower-case name"):
        _Conf(base_url="https://x.example", object_name="Deals")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        _Conf(base_url="https://x.example", other=1)


def test_children_are_other_configured_streams():
    from typing import Annotated

    class Stream(toolkit.StrictModel):
        children: Annotated[dict[str, toolkit.ChildConfig], toolkit.ChildList] = {}

    streams = {"deals": Stream(children=["lines"]), "lines": Stream()}
    assert streams["deals"].children == {"lines": toolkit.ChildConfig(stream="lines")}
    toolkit.check_children(streams)
    with pytest.raises(ValueError, match="child 'x' names stream 'nope', which is not config"):
        toolkit.check_children({"deals": Stream(children={"x": {"stream": "nope"}})})
    with pytest.raises(ValueError, match="stream 'deals' cannot embed itself"):
        toolkit.check_children({"deals": Stream(children=["deals"])})
    with pytest.raises(ValueError, match="stream name 'bad name' must be letters"):
        toolkit.check_children({"bad name": Stream()})


def test_children_foreign_keys_are_added_to_the_child_fields():
    from typing import Annotated

    class Stream(toolkit.StrictModel):
        fields: list[str] = []
        children: Annotated[dict[str, toolkit.ChildConfig], toolkit.ChildList] = {}

    streams = {"deals": Stream(fields=["id"], children=["lines"]), "lines": Stream(fields=["id"])}
    toolkit.check_children(streams, lambda parent, child: f"{parent.fields[0]}_of_parent")
    toolkit.check_children(streams, lambda parent, child: f"{parent.fields[0]}_of_parent")
    assert streams["lines"].fields == ["id", "id_of_parent"]   # added once
    assert streams["deals"].fields == ["id"]


def test_selected_names_adds_the_needed_ones_once_and_names_the_bad_ones():
    lower = re.compile(r"^[a-z_]+$")
    assert toolkit.selected_names(["name", "id", "name"], ("id", None, "stamp"), lower,
                                  lambda bad: f"{bad} bad") == ["name", "id", "stamp"]
    with pytest.raises(ValueError, match=r"\['Name', 'X'\] are not lower-case"):
        toolkit.selected_names(["Name", "id"], ("id",), lower,
                               lambda bad: f"{bad} are not lower-case", also=["X", "ok"])


def test_delete_in_batches_sends_each_id_once_and_answers_in_order():
    calls = []

    def send(chunk):
        calls.append(chunk)
        return [WriteResult(i, WriteAction.UPDATED, target_id=i) for i in chunk]

    ids = ["a", "bad", "b", "a", "c", 7]
    results = delete_in_batches(ids, DeleteMode.DELETE, send, size=2,
                                refuse=lambda i: "not an id" if i == "bad" else None)
    assert calls == [["a", "b"], ["c", "7"]]
    assert [(r.key, r.action, r.error) for r in results] == [
        ("a", WriteAction.UPDATED, None), ("bad", WriteAction.FAILED, "not an id"),
        ("b", WriteAction.UPDATED, None), ("a", WriteAction.UPDATED, None),
        ("c", WriteAction.UPDATED, None), ("7", WriteAction.UPDATED, None)]
    assert [r.action for r in delete_in_batches(["a", "b"], DeleteMode.IGNORE, send,
                                                 size=2)] == [WriteAction.UNCHANGED] * 2
    assert len(calls) == 2    # IGNORE sends nothing


def test_children_are_grouped_by_parent_a_chunk_of_parents_per_query_and_embedded():
    lines = [{"id": f"L{n}", "deal": f"D{n % 3}"} for n in range(7)]
    queries = []

    def query(ids):
        queries.append(ids)
        return [line for line in lines if line["deal"] in ids]

    batch = Batch(rows=[{"id": "D0"}, {"id": "D1"}, {"id": "D9"}],
                  cursor=Cursor(value="2026-01-01T00:00:00.000Z", key="D9"))
    embed_children(batch, "id", {"lines": "line stream"}, lambda child, ids: (
        children_by_parent(ids, "deal", query, chunk=2)))
    assert queries == [["D0", "D1"], ["D9"]]
    assert [[line["id"] for line in row["lines"]] for row in batch.rows] == [
        ["L0", "L3", "L6"], ["L1", "L4"], []]


def test_error_helpers_name_the_request_and_read_a_json_body_or_none():
    import requests

    from crm2erp.connectors.toolkit.errors import error_body, request_line

    resp = requests.Response()
    resp.url = "https://x.example/api/accounts(name%3D'a')?$top=1"
    resp.request = requests.Request("PATCH", resp.url).prepare()
    resp._content = b'{"error": {"code": "0x1"}}'
    assert request_line(resp) == "PATCH /api/accounts(name='a')"
    assert error_body(resp) == {"error": {"code": "0x1"}}
    resp._content = b"<html>Bad gateway</html>"
    assert error_body(resp) is None


def test_check_streams_checks_every_stream_and_names_each_problem():
    from crm2erp.connectors.toolkit.errors import check_streams

    def problem_of(stream):
        if stream == "gone":
            raise ConfigError("no such table")
        return None if stream == "fine" else f"{stream} lacks a field"

    check_streams("CRM", {"a": "fine"}, problem_of)
    with pytest.raises(ConfigError, match=r"^CRM connection: stream 'a': no such table; "
                       r"stream 'c': odd lacks a field - fix it$"):
        check_streams("CRM", {"a": "gone", "b": "fine", "c": "odd"}, problem_of, " - fix it")


def test_problems_of_checks_every_part_and_joins_their_problems():
    from crm2erp.connectors.toolkit.errors import problems_of

    def problem_of(part):
        if part == "gone":
            raise ConfigError("model gone is unknown")
        return None if part == "fine" else f"{part} lacks a field"

    assert problems_of(["fine", "fine"], problem_of) is None
    assert problems_of([], problem_of) is None
    assert problems_of(["gone", "fine", "odd"], problem_of) == \
        "model gone is unknown; odd lacks a field"


def test_create_unless_found_sends_again_only_what_a_lost_answer_did_not_create():
    from crm2erp.connectors.toolkit.creates import create_unless_found
    from crm2erp.errors import RetriableError
    from crm2erp.http import HttpClient, HttpSettings, RetryConfig

    waits: list[float] = []
    client = HttpClient(HttpSettings(retry=RetryConfig(max_attempts=3)), sleep=waits.append)
    stored: dict[str, str] = {}
    sent: list[list[str]] = []

    def create(keys):
        sent.append(list(keys))
        stored[keys[0]] = f"id-{keys[0]}"           # the first record is committed...
        if len(sent) == 1:
            raise RetriableError("connection reset")  # ...and the answer is lost
        stored.update({key: f"id-{key}" for key in keys})
        return {key: stored[key] for key in keys}

    def find(keys):
        return {key: stored[key] for key in keys if key in stored}

    assert create_unless_found(["a", "b"], create, find, client=client,
                               what="create") == {"a": "id-a", "b": "id-b"}
    assert sent == [["a", "b"], ["b"]]   # "a" was found, never sent twice
    assert client.stats.retries == len(waits) == 1

    def always_lost(keys):
        sent.append(list(keys))
        raise RetriableError("timeout")

    sent.clear()
    with pytest.raises(RetriableError, match="timeout"):
        create_unless_found(["c"], always_lost, lambda keys: {}, client=client, what="create")
    assert sent == [["c"]] * 3           # retry.max_attempts sends, then the run stops


def test_isolate_fails_only_the_refused_records_and_chunks_keep_order():
    from crm2erp.connectors.toolkit.batches import chunks, isolate
    from crm2erp.errors import RecordError

    written, failed, calls = [], {}, []

    def create(batch):          # one transaction: a bad record refuses the whole call
        calls.append(list(batch))
        if any(item % 7 == 0 for item in batch):
            raise RecordError(f"{[i for i in batch if i % 7 == 0]} refused")
        written.extend(batch)
        return len(batch)

    done = isolate(list(range(1, 21)), create, failed.__setitem__)
    assert sorted(written) == [i for i in range(1, 21) if i % 7] and failed == {
        7: "[7] refused", 14: "[14] refused"}
    assert [item for part, _ in done for item in part] == written   # in order, with results
    assert [result for _, result in done] == [len(part) for part, _ in done]
    assert len(calls) < 20      # halving, not one call per record
    with pytest.raises(ValueError):   # anything but a refusal propagates
        isolate([1], lambda batch: int("x"), failed.__setitem__)
    assert [list(c) for c in chunks(range(7), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunks([], 3)) == [] and [list(c) for c in chunks([1, 2], 0)] == [[1], [2]]


def test_for_found_ids_acts_only_on_records_that_exist_and_answers_in_order():
    from crm2erp.connectors.toolkit.records import as_id, for_found_ids

    asked = []

    def find(ids):
        asked.append(ids)
        return {i: {"id": i} for i in ids if i != 3}

    results = for_found_ids(["2", "x", "3", "1", "2"], find,
                            lambda key, rid, rec: WriteResult(key, WriteAction.UPDATED, key),
                            lambda key: WriteResult(key, WriteAction.FAILED, error="gone"))
    assert [(r.key, r.action) for r in results] == [
        ("2", WriteAction.UPDATED), ("x", WriteAction.FAILED), ("3", WriteAction.FAILED),
        ("1", WriteAction.UPDATED), ("2", WriteAction.UPDATED)]
    assert asked == [[1, 2, 3]]                        # one look-up for all ids
    assert for_found_ids(["a"], find, None, lambda key: WriteResult(
        key, WriteAction.FAILED)) and asked == [[1, 2, 3]]   # no integer id: no look-up
    assert [as_id(v) for v in (7, " 8 ", "x", True, None, "1.5")] == [7, 8, None, None,
                                                                         None, None]


def test_default_streams_are_fresh_per_connection_and_named_ones_override_some_keys():
    from crm2erp.connectors.toolkit.streams import default_streams, over_defaults

    class Stream(toolkit.StrictModel):
        table: str
        fields: list[str] = []

    specs = {"customers": {"table": "cust", "fields": ["name"]}}
    factory = default_streams(Stream, specs)
    first, second = factory(), factory()
    first["customers"].fields.append("vat")
    assert second["customers"].fields == ["name"] and specs["customers"]["fields"] == ["name"]
    merged = over_defaults({"url": "u", "streams": {"customers": {"fields": []},
                                                    "orders": {"table": "ord"}}}, specs)
    assert merged["streams"] == {"customers": {"table": "cust", "fields": []},
                                 "orders": {"table": "ord"}}
    assert over_defaults({"url": "u"}, specs) == {"url": "u"} and over_defaults(3, specs) == 3


@pytest.mark.parametrize("current,sent,same", [
    ("12.50", 12.5, True),            # a number read back as text
    ("12.50", "12.5", True),
    (None, "", True),                 # both empty
    ("", None, True),
    ("ACME", "ACME", True),
    ("ACME", "Acme", False),
    (None, 0, False),                 # empty is not zero
    (True, "1", False),               # a boolean is not read as a number
    (False, "0", False),
    ("n/a", 1, False),
])
def test_same_value_reads_numbers_and_empties_like_the_system_stores_them(current, sent, same):
    assert same_value(current, sent) is same


@pytest.mark.parametrize("content,expected", [
    (b"  <html>Bad Gateway</html>\n", "HTTP 502: <html>Bad Gateway</html>"),
    (b"", "HTTP 502: no body"),
    (None, "HTTP 502: no body"),
    ("x" * 400, "HTTP 502: " + "x" * 300),
])
def test_status_text_is_the_start_of_a_body_outside_the_error_format(content, expected):
    assert status_text(502, content) == expected


def test_batches_feeds_a_whole_read_in_key_order_with_deletions_after_the_watermark():
    stamp = "2024-01-01T00:00:00.000Z"
    later = "2024-01-02T00:00:00.000Z"
    items = [(stamp, "b", {"id": "b"}), (stamp, "a", {"id": "a"}), (later, "c", {"id": "c"})]
    batcher = OrderedBatcher(2, Cursor(stamp, "a"), deletions=[(later, "gone")])
    batches = list(batcher.batches(items))
    assert [(b.rows, b.deleted_keys, b.cursor) for b in batches] == [
        ([{"id": "b"}, {"id": "c"}], [], Cursor(later, "c")),
        ([], ["gone"], Cursor(later, "gone"))]


def test_odata_string_quotes_and_doubles_quotes_inside():
    assert odata_string("O'Neil") == "'O''Neil'"
    assert odata_string(12) == "'12'"


def test_paged_records_hands_out_every_pages_records_after_noting_the_page():
    from crm2erp.connectors.toolkit.paging import paged_records

    events = []

    class TwoPages:
        def pages(self, client, url, params, **request_kwargs):
            events.append(("asked", client, url, params, request_kwargs))
            yield {"records": [1, 2]}
            yield {"records": [3]}

        def records(self, page):
            return page["records"]

    records = paged_records(TwoPages(), "client", "/items", {"q": 1}, headers={"A": "b"},
                            each_page=lambda: events.append("page"))
    for record in records:
        events.append(record)
    assert events == [("asked", "client", "/items", {"q": 1}, {"headers": {"A": "b"}}),
                      "page", 1, 2, "page", 3]


def test_refused_and_quota_used_up_say_who_refused_what_and_that_nothing_was_lost():
    import requests

    from crm2erp.connectors.toolkit.errors import quota_used_up, refused
    from crm2erp.errors import BudgetExhaustedError

    resp = requests.Response()
    resp.url = "https://x.example/api/accounts?$top=1"
    resp.request = requests.Request("GET", resp.url).prepare()
    error = refused("CRM", resp, "no table accounts", " - fix entity_set")
    assert isinstance(error, ConfigError)
    assert str(error) == "CRM refused GET /api/accounts: no table accounts - fix entity_set"
    assert isinstance(refused("CRM", resp, "no", error=FatalError), FatalError)
    used_up = quota_used_up("CRM", "the daily quota is used up", " - run again tomorrow.")
    assert isinstance(used_up, BudgetExhaustedError)
    assert str(used_up) == ("CRM: the daily quota is used up. Nothing was lost: the watermark "
                            "stays at the last committed batch - run again tomorrow.")
    assert isinstance(quota_used_up("CRM", "x", "", error=FatalError), FatalError)


def test_keyset_records_asks_for_each_page_after_the_last_key_and_stops_at_a_short_one():
    from crm2erp.connectors.toolkit.paging import keyset_records

    table = list(range(1, 8))
    asked = []

    def fetch(after):
        asked.append(after)
        return [n for n in table if after is None or n > after][:3]

    records = keyset_records(fetch, lambda page: page[-1], size=3)
    assert next(records) == 1 and asked == [None]    # a page is handed out before the next
    assert list(records) == [2, 3, 4, 5, 6, 7]
    assert asked == [None, 3, 6]
    asked.clear()
    table.append(8)    # a full last page: one more (empty) page ends the listing
    assert list(keyset_records(fetch, lambda page: page[-1], size=3, after=2)) == [3, 4, 5,
                                                                                   6, 7, 8]
    assert asked == [2, 5, 8]


def test_record_value_keeps_a_records_fields_that_are_set_and_names_any_other_value():
    from crm2erp.connectors.toolkit.fields import record_value

    assert record_value({"city": "Bonn", "zip": "", "street": None, "no": 0}, "address") == \
        {"city": "Bonn", "no": 0}
    assert record_value(None, "address") == {}
    with pytest.raises(ValueError, match=r"^address: the row's value must be a record of its "
                       r"fields, got str 'Bonn'$"):
        record_value("Bonn", "address")
    with pytest.raises(KeyError):
        record_value(["Bonn"], "address", error=KeyError)

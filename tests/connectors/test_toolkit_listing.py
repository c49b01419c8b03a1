"""The toolkit's declared listings (``toolkit.listing``), cursor formats
(``toolkit.cursors``), dotted fields (``toolkit.fields``) and error rules
(``toolkit.rules``)."""

from __future__ import annotations

import pytest
import requests
from pydantic import TypeAdapter, ValidationError

from crm2erp.connectors.base import Cursor
from crm2erp.connectors.toolkit.cursors import CursorCodec, CursorConfig
from crm2erp.connectors.toolkit.fields import apply_rename, nest, stored_as_sent, unstored
from crm2erp.connectors.toolkit.listing import (
    AscendingCheck,
    CursorListing,
    NextLinkListing,
    OffsetListing,
    PageListing,
    PaginatorConfig,
    SingleListing,
    build_paginator,
    key_text,
    latest_batches,
)
from crm2erp.connectors.toolkit.rules import ErrorRule, build_error_mapper
from crm2erp.errors import ConfigError, FatalError, RetriableError

PAGING = TypeAdapter(PaginatorConfig)


def paginator(settings: dict, records: str | None = "data"):
    return build_paginator(PAGING.validate_python(settings), records, "crm: GET /x")


def test_each_declared_style_builds_its_listing_with_its_settings():
    offset = paginator({"type": "offset", "limit": 5, "offset_param": "start",
                        "has_more": "more", "order_by": "id"})
    assert isinstance(offset, OffsetListing) and offset.offset_param == "start"
    assert offset.has_more == "more" and offset.where == "crm: GET /x"
    assert isinstance(paginator({"type": "page", "order_by": "id"}), PageListing)
    link = paginator({"type": "next_link", "next": "links.next"})
    assert isinstance(link, NextLinkListing) and link.next_path == "links.next"
    cursor = paginator({"type": "cursor", "cursor_path": "next", "limit": 7})
    assert isinstance(cursor, CursorListing)
    assert cursor.first_params({"q": 1}) == {"q": 1, "limit": 7}
    assert isinstance(paginator({"type": "none"}), SingleListing)
    with pytest.raises(ValidationError, match="offset paging needs order_by"):
        PAGING.validate_python({"type": "offset"})


def test_offset_moves_on_by_the_records_received_and_stops_on_has_more_total_or_empty():
    listing = paginator({"type": "offset", "limit": 10, "total": "count", "order_by": "id"})
    params = listing.first_params({})
    assert params == {"offset": 0, "limit": 10}
    page = {"data": [{"id": 1}, {"id": 2}, {"id": 3}], "count": 5}   # capped at 3
    assert listing.next_request(page, None, "/x", params) == ("/x", {"offset": 3, "limit": 10})
    assert listing.next_request(page, None, "/x", {"offset": 3, "limit": 10}) is None  # 6 >= 5
    assert listing.next_request({"data": []}, None, "/x", params) is None
    listing.first_params({})
    with pytest.raises(ConfigError, match="the reply's total 'count' is 'many'"):
        listing.next_request({"data": [{}], "count": "many"}, None, "/x", params)
    flag = paginator({"type": "page", "size": 2, "has_more": "more", "order_by": "id"})
    first = flag.first_params({})
    assert flag.next_request({"data": [{}], "more": True}, None, "/x", first)[1]["page"] == 2
    assert flag.next_request({"data": [{}], "more": False}, None, "/x", first) is None


def test_records_are_picked_strictly():
    listing = paginator({"type": "none"}, records="items")
    assert listing.records({"items": None}) == [] and listing.records({}) == []
    with pytest.raises(ConfigError, match=r"crm: GET /x: the reply has no records at 'items'"):
        listing.records({"data": []})


def test_ascending_check_stops_at_the_first_record_out_of_order():
    check = AscendingCheck("id", "crm: GET /x")
    for value in (1, 2, 2, 10):
        check.check({"id": value})
    with pytest.raises(ConfigError, match=r"not sorted by 'id' ascending \(3 came after 10\)"):
        check.check({"id": 3})
    with pytest.raises(ConfigError, match="a record has no 'id'"):
        AscendingCheck("id", "w").check({})
    AscendingCheck(None, "w").check({})   # no order asked for: nothing checked


def test_latest_batches_keep_the_latest_version_after_the_watermark_in_key_order():
    def entry(value, key, gone=False):
        return value, key_text(key), {"id": key, "v": value}, str(key) if gone else None

    entries = [entry(None, 9), entry(2, 10), entry(1, 3), entry(3, 3), entry(2, 2, gone=True),
               entry(1, 1), entry(2, 10)]
    batches = list(latest_batches(entries, None, 2))
    assert [[r["id"] for r in b.rows] for b in batches] == [[9, 1], [10], [3]]
    assert batches[0].cursor == Cursor(1, key_text(1)) and batches[1].deleted_keys == ["2"]
    assert batches[1].cursor == Cursor(2, key_text(10)) and batches[2].cursor.value == 3
    assert next(latest_batches(entries, None, 1)).cursor is None   # no position: no cursor
    resumed = list(latest_batches(entries, (2, key_text(2)), 10))
    assert [r["id"] for r in resumed[0].rows] == [9, 10, 3]
    assert key_text(7) == "00000000000000000007" and key_text("abc") == "abc"


def test_cursor_codec_reads_epochs_and_writes_the_since_parameter():
    epoch = CursorCodec(CursorConfig(field="t", format="epoch"))
    assert epoch.position("1700000000") == "2023-11-14T22:13:20.000000Z"
    assert epoch.param(Cursor("2023-11-14T22:13:20Z")) == 1_700_000_000
    iso = CursorCodec(CursorConfig(field="t", exclusive=True))
    assert iso.param(Cursor("2023-11-14T22:13:20Z")) == "2023-11-14T22:13:19Z"
    assert iso.position(None) is None
    with pytest.raises(FatalError, match="value 'soon' does not match format 'iso'"):
        iso.position("soon")


def test_fields_rename_nest_and_name_what_was_not_stored():
    assert apply_rename({"a": {"b": 1}, "c": 2}, {"a.b": "x"}) == {"a": {}, "c": 2, "x": 1}
    assert nest({"a.b": 1}) == {"a": {"b": 1}}
    assert stored_as_sent(12, "12.0") and not stored_as_sent("007", "7")
    assert not stored_as_sent(True, 1)
    assert unstored({"a": {"b": 1, "c": 2}}, {"a": {"b": 1}}, ignore=["a.x"]) == \
        ["a.c (sent 2, it holds None)"]


def answer(status: int, text: str, retry_after: str | None = None) -> requests.Response:
    resp = requests.Response()
    resp.status_code, resp._content = status, text.encode()
    if retry_after:
        resp.headers["Retry-After"] = retry_after
    return resp


def test_error_rules_match_status_and_body_and_say_fatal_or_retry():
    assert build_error_mapper("crm", []) is None
    mapper = build_error_mapper("crm", [
        ErrorRule(status=429, body_contains="Budget", message="the budget is used up"),
        ErrorRule(status=[409, 423], action="retry")])
    fatal = mapper(answer(429, "daily budget exhausted"))
    assert isinstance(fatal, FatalError)
    assert str(fatal).startswith("crm: HTTP 429: the budget is used up. The run stopped")
    assert mapper(answer(429, "slow down")) is None
    retry = mapper(answer(423, "locked", retry_after="3"))
    assert isinstance(retry, RetriableError) and str(retry) == "crm: HTTP 423: locked"
    assert retry.retry_after == 3

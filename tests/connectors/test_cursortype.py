"""``parse_cursor`` reads text that looks like an ISO-8601 timestamp the short way
(issue 12); what it returns, and what it says of a value that does not parse, stay
as the general way has them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from crm2erp.connectors.cursortype import parse_cursor
from crm2erp.contract import CursorType

BERLIN = dt.timezone(dt.timedelta(hours=1))


@pytest.mark.parametrize("kind", ["auto", "timestamp"])
def test_iso_text_is_an_instant_naive_text_in_the_stream_zone(kind):
    ctype = CursorType(kind)
    assert parse_cursor(" 2026-03-01 08:30:00.5 ", ctype, BERLIN) == (
        2, dt.datetime(2026, 3, 1, 7, 30, 0, 500000, tzinfo=dt.UTC))
    assert parse_cursor("2026-03-01T08:30:00Z", ctype, BERLIN) == (
        2, dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC))
    assert parse_cursor("2026-03-01", ctype, dt.UTC) == (
        2, dt.datetime(2026, 3, 1, tzinfo=dt.UTC))


def test_auto_text_with_a_dash_fifth_is_still_a_number_when_it_is_one():
    assert parse_cursor("123e-45678", CursorType("auto"), dt.UTC) == (1, Decimal("123e-45678"))
    assert parse_cursor("42", CursorType("auto"), dt.UTC) == (1, Decimal(42))


def test_text_that_is_no_timestamp_says_why():
    with pytest.raises(ValueError, match="neither a number nor an ISO-8601 timestamp"):
        parse_cursor("2025-13-01T00:00:00", CursorType("auto"), dt.UTC)
    with pytest.raises(ValueError, match="is not an ISO-8601 timestamp"):
        parse_cursor("2025-13-01T00:00:00", CursorType("timestamp"), dt.UTC)
    with pytest.raises(ValueError, match="does not match the format"):
        parse_cursor("2025-03-01", CursorType("timestamp", "%m/%d/%Y"), dt.UTC)

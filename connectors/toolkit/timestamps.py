"""Timestamp cursor values, parsed and written once for every API connector.

Parsing builds on :mod:`crm2erp.connectors.cursortype` (the engine's typed
cursors): a value is an ISO-8601 text (``Z`` allowed) or a ``datetime``;
naive values are in ``zone``. What does not parse raises the connector's
error naming the value, never a bare ``ValueError``.
"""

from __future__ import annotations

__all__ = ["iso_millis", "utc_instant", "utc_text"]

import datetime as dt
from typing import Any

from crm2erp.connectors.cursortype import CursorType, parse_cursor
from crm2erp.errors import FatalError

_TIMESTAMP = CursorType("timestamp")


def utc_instant(value: Any, what: str = "cursor value", *, zone: dt.tzinfo = dt.UTC,
                error: type[Exception] = FatalError) -> dt.datetime:
    """``value`` as an aware UTC datetime; ``error("<what> 'x' is not an ISO-8601 timestamp")``."""
    try:
        return parse_cursor(value, _TIMESTAMP, zone)[1].astimezone(dt.UTC)
    except ValueError:
        raise error(f"{what} {value!r} is not an ISO-8601 timestamp") from None


def utc_text(moment: dt.datetime, *, millis: bool = True) -> str:
    """``YYYY-MM-DDTHH:MM:SS[.mmm]Z`` in UTC (naive = UTC): fixed width, sorts as text."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(value: Any, what: str = "cursor value") -> str:
    """A timestamp (ISO text, epoch milliseconds or datetime) as ``YYYY-MM-DDTHH:MM:SS.mmmZ``.

    The fixed-width UTC form sorts correctly as text, which is what cursor
    comparisons use.
    """
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return utc_text(dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC))
    return utc_text(utc_instant(value, what))

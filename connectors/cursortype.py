"""Typed cursor values: what a flow declares, and how values are parsed and ordered.

A cursor value is parsed as the stream's cursor type before it is compared,
so a value that is not of that type (``n/a`` in a timestamp column) can be
rejected instead of ranking above every timestamp and freezing the
watermark. Parsed values are ``(rank, value)`` tuples: rank 1 numbers
(``Decimal``), 2 instants (aware ``datetime``), 3 text; one declared type
gives one rank, so they compare with each other.
"""

from __future__ import annotations

__all__ = ["CURSOR_TYPES", "CursorType", "cursor_json", "parse_cursor", "parse_watermark"]

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from crm2erp.contract import CURSOR_TYPES, CursorType

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_ISO_KINDS = ("auto", "timestamp")   # kinds that parse ISO-8601 text as a timestamp


def _instant(moment: dt.datetime, tz: dt.tzinfo) -> tuple:
    return (2, moment if moment.tzinfo else moment.replace(tzinfo=tz))


def _iso(text: str, tz: dt.tzinfo) -> tuple:
    if len(text) < 10 or text[4:5] != "-":
        raise ValueError(f"{text!r} is not an ISO-8601 timestamp")
    try:
        return _instant(dt.datetime.fromisoformat(text.replace("Z", "+00:00")), tz)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 timestamp") from None


def _number(value: Any, integer: bool) -> tuple:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not a number")
    if isinstance(value, int):
        return (1, Decimal(value))
    if isinstance(value, float | Decimal) and not integer:
        number = Decimal(str(value))
        if not number.is_finite():
            raise ValueError(f"{value!r} is not a finite number")
        return (1, number)
    text = str(value).strip() if isinstance(value, str | Decimal | float) else None
    pattern = _INTEGER if integer else _NUMBER
    if text is None or not pattern.match(text):
        raise ValueError(f"{value!r} is not {'an integer' if integer else 'a number'}")
    try:
        return (1, Decimal(text))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None


def parse_cursor(value: Any, ctype: CursorType, tz: dt.tzinfo) -> tuple:
    """The comparable ``(rank, value)`` of a non-None cursor value; ValueError saying why not."""
    kind = ctype.type
    if type(value) is str and kind in _ISO_KINDS and ctype.format is None:
        text = value.strip()
        if text[4:5] == "-":   # the usual cursor, an ISO-8601 timestamp: never a number
            try:
                return _iso(text, tz)
            except ValueError:
                pass           # the steps below say why
    if kind == "string":
        if isinstance(value, dict | list | bool):
            raise ValueError(f"{value!r} is not a text value")
        return (3, value if isinstance(value, str) else str(value))
    if kind in ("integer", "number"):
        return _number(value, kind == "integer")
    if isinstance(value, dt.datetime):
        return _instant(value, tz)
    if isinstance(value, dt.date):
        return (2, dt.datetime(value.year, value.month, value.day, tzinfo=tz))
    if kind == "auto":
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return _number(value, False)
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            return _number(value, False)
        if isinstance(value, str):
            try:
                return _iso(value.strip(), tz)
            except ValueError:
                raise ValueError(
                    f"{value!r} is neither a number nor an ISO-8601 timestamp (declare the "
                    "cursor's type in the flow, e.g. incremental: {type: timestamp, "
                    "format: '%m/%d/%Y %H:%M'})") from None
        raise ValueError(f"{value!r} is neither a number nor an ISO-8601 timestamp")
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a {kind} text")
    text = value.strip()
    if ctype.format is None:
        if kind == "date" and len(text) == 10:
            try:
                day = dt.date.fromisoformat(text)
            except ValueError:
                raise ValueError(f"{value!r} is not an ISO-8601 date") from None
            return (2, dt.datetime(day.year, day.month, day.day, tzinfo=tz))
        return _iso(text, tz)
    try:
        return _instant(dt.datetime.strptime(text, ctype.format), tz)
    except ValueError:
        raise ValueError(f"{value!r} does not match the format {ctype.format!r}") from None


def parse_watermark(value: Any, ctype: CursorType, tz: dt.tzinfo) -> tuple:
    """A stored watermark (the JSON form of :func:`cursor_json`) as ``(rank, value)``.

    Watermarks are stored in canonical form (UTC ISO-8601, numbers, text),
    never in a declared ``format``.
    """
    if ctype.type in ("timestamp", "date"):
        return parse_cursor(value, CursorType("timestamp"), tz)
    return parse_cursor(value, ctype, tz)


def cursor_json(order: tuple) -> Any:
    """The JSON form of a parsed cursor, for ``Cursor.value``."""
    rank, value = order
    if rank == 0:
        return None
    if rank == 1:
        return int(value) if value == value.to_integral_value() else float(value)
    if rank == 2:
        return value.astimezone(dt.UTC).isoformat()
    return value

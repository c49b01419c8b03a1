"""OData v2 wire values as SAP Gateway sends them, and reading SAP error bodies.

SAP's v2 JSON format predates ISO dates in JSON: ``Edm.DateTime`` is
``/Date(1700000000000)/`` (milliseconds since the epoch, UTC),
``Edm.DateTimeOffset`` is ``/Date(1700000000000+0000)/``, ``Edm.Time`` is an
ISO duration ``PT12H00M00S`` and ``Edm.Decimal`` travels as a string so no
amount goes through a float. Filter literals have their own spelling again
(``datetime'2024-01-31T00:00:00'``, ``datetimeoffset'...Z'``, ``time'PT..'``).
The helpers here convert both ways; the connector and the emulator share them
(the emulator writes its error bodies itself). A SAP error body becomes one line of
text: :func:`sap_error`, :func:`describe_error`.
"""

from __future__ import annotations

__all__ = ["parse_date", "format_date", "parse_time", "format_time", "to_wire", "from_wire",
           "literal", "sap_error", "describe_error"]

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from crm2erp.connectors.toolkit.errors import json_or_none, status_text
from crm2erp.connectors.toolkit.odata import odata_string

_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_TIME = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d+))?S)?$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def parse_date(value: str) -> dt.datetime:
    """``/Date(ms)/`` or ``/Date(ms+0000)/`` as an aware UTC datetime."""
    match = _DATE.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not an OData v2 /Date(...)/ value")
    return _EPOCH + dt.timedelta(milliseconds=int(match[1]))


def format_date(value: dt.datetime | dt.date, *, offset: bool = False) -> str:
    """A date or datetime as ``/Date(ms)/`` (``offset`` adds ``+0000``: DateTimeOffset)."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    millis = (value - _EPOCH) // dt.timedelta(milliseconds=1)
    return f"/Date({millis}{'+0000' if offset else ''})/"


def parse_time(value: str) -> dt.time:
    match = _TIME.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not an OData v2 Edm.Time (PT12H00M00S)")
    hours, minutes, seconds = (int(match[i] or 0) for i in (1, 2, 3))
    micro = int((match[4] or "0")[:6].ljust(6, "0"))
    return dt.time(hours, minutes, seconds, micro)


def format_time(value: dt.time) -> str:
    return f"PT{value.hour:02d}H{value.minute:02d}M{value.second:02d}S"


def from_wire(value: Any) -> Any:
    """A JSON value from SAP as Python: dates become datetimes, times become times."""
    if isinstance(value, str):
        if value.startswith("/Date("):
            try:
                return parse_date(value)
            except ValueError:
                return value
        if value.startswith("PT") and _TIME.match(value):
            return parse_time(value)
    return value


def to_wire(value: Any) -> Any:
    """A Python value for a SAP JSON body (``json.dumps(default=to_wire)``)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime | dt.date):
        return format_date(value)
    if isinstance(value, dt.time):
        return format_time(value)
    raise TypeError(f"cannot send {type(value).__name__} to SAP")


def literal(value: Any, kind: str | None = None) -> str:
    """A ``$filter`` literal; ``kind`` is ``datetime``, ``datetimeoffset`` or ``time``."""
    if kind == "datetime":
        return f"datetime'{value.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%S')}'"
    if kind == "datetimeoffset":
        return f"datetimeoffset'{value.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%S')}Z'"
    if kind == "time":
        return f"time'{format_time(value)}'"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    return odata_string(value)


def sap_error(content: bytes | str | None) -> tuple[str, str] | None:
    """``(code, message)`` of a SAP error body, details included; None if not one.

    The message joins the top message and the distinct ``errordetails``
    messages (SAP puts the field-level reasons there), which is what a
    steward needs in the dead-letter reason.
    """
    body = json_or_none(content)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    message = error.get("message")
    text = message.get("value") if isinstance(message, dict) else str(message or "")
    parts = [text] if text else []
    inner = error.get("innererror") if isinstance(error.get("innererror"), dict) else {}
    for detail in inner.get("errordetails") or []:
        extra = detail.get("message") if isinstance(detail, dict) else None
        if extra and extra not in parts:
            parts.append(f"{detail.get('code', '')}: {extra}".lstrip(": "))
    return str(error.get("code") or "UNKNOWN"), "; ".join(parts) or "no message"


def describe_error(status: int, body: bytes) -> str:
    """A one-line dead-letter reason from a SAP error answer."""
    parsed = sap_error(body)
    if parsed is None:
        return status_text(status, body)
    return f"HTTP {status} {parsed[0]}: {parsed[1]}"

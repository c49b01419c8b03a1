"""SAP OData v2 entities as connector rows, and stream positions.

A row is the entity's JSON with OData's envelope taken off: ``__metadata``
dropped, ``/Date(...)/`` and ``PT..`` values as datetimes and times, expanded
to-many navigation properties as plain lists (``{"results": [...]}`` unwrapped)
and deferred ones left out. Decimals stay the strings SAP sent.
"""

from __future__ import annotations

__all__ = ["clean", "position", "key_text", "KEY_SEP"]

import datetime as dt
from typing import Any

from crm2erp.connectors.sap.config import SapStreamConfig
from crm2erp.connectors.sap.odata import from_wire
from crm2erp.connectors.toolkit.timestamps import utc_text

KEY_SEP = "\x1f"  # sorts below every printable character: joined keys sort like tuples


def clean(entity: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in entity.items():
        if name == "__metadata":
            continue
        if isinstance(value, dict):
            if "__deferred" in value:
                continue
            if isinstance(value.get("results"), list):
                out[name] = [clean(v) for v in value["results"]]
                continue
            out[name] = clean(value)
        else:
            out[name] = from_wire(value)
    return out


def key_text(row: dict[str, Any], fields: list[str], sep: str = "|") -> str:
    return sep.join("" if row.get(f) is None else str(row.get(f)) for f in fields)


def _stamp(date: Any, time: Any) -> str | None:
    if date is None:
        return None
    if not isinstance(date, dt.datetime):
        raise ValueError(f"cursor value {date!r} is not a /Date(...)/ value")
    if isinstance(time, dt.time):
        date = date.replace(hour=time.hour, minute=time.minute, second=time.second,
                            microsecond=time.microsecond)
    return utc_text(date)


def position(row: dict[str, Any], stream: SapStreamConfig) -> tuple[str, str]:
    """``(cursor as ISO UTC, joined key)``: the order the reader asks the server for."""
    stamp = _stamp(row.get(stream.cursor_field),
                   row.get(stream.cursor_time_field) if stream.cursor_time_field else None)
    if stamp is None and stream.created_date_field:
        stamp = _stamp(row.get(stream.created_date_field),
                       row.get(stream.created_time_field) if stream.created_time_field
                       else None)
    return stamp or "", key_text(row, stream.key, KEY_SEP)

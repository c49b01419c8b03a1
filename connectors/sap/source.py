"""Reading SAP entity sets: ``$filter`` on the change stamp, ``__next`` paging.

The reader asks for ``cursor >= watermark`` ordered by the cursor and then
the key properties, follows the server's ``__next`` links (``$skiptoken``),
and drops the rows at or before the batch cursor ``(stamp, key)`` locally,
so a run that resumes inside a group of rows sharing one stamp neither skips
nor repeats one.

Business partners need two queries: S/4 leaves ``LastChangeDate`` empty
until a partner is first changed, so the never-changed ones are read by
``CreationDate`` in a second ordered query, and both are merged by stamp.

Records with the stream's ``deleted_flag`` set are left out of full reads
and reported as ``Batch.deleted_keys`` by incremental ones.
"""

from __future__ import annotations

__all__ = ["SapReader", "position"]

import datetime as dt
from collections.abc import Iterator
from typing import Any

from crm2erp.connectors.base import Batch, Cursor
from crm2erp.connectors.sap.client import SapClient
from crm2erp.connectors.sap.config import SapStreamConfig
from crm2erp.connectors.sap.odata import literal
from crm2erp.connectors.sap.rows import clean
from crm2erp.connectors.toolkit.ordering import merged_batches
from crm2erp.connectors.toolkit.timestamps import utc_instant, utc_text
from crm2erp.contract import key_text

KEY_SEP = "\x1f"  # sorts below every printable character: joined keys sort like tuples


def _since(value: Any) -> dt.datetime:
    return utc_instant(value, "SAP cursor value")


def _stamp(row: dict[str, Any], date_field: str, time_field: str | None) -> str | None:
    """The row's stamp as ISO UTC text: a date, with the time of ``time_field`` if any."""
    date, time = row.get(date_field), row.get(time_field) if time_field else None
    if date is None:
        return None
    if not isinstance(date, dt.datetime):
        raise ValueError(f"cursor value {date!r} is not a /Date(...)/ value")
    if isinstance(time, dt.time):
        date = dt.datetime.combine(date.date(), time, date.tzinfo)
    return utc_text(date)


def position(row: dict[str, Any], stream: SapStreamConfig) -> tuple[str, str]:
    """``(cursor as ISO UTC, joined key)``: the order the reader asks the server for."""
    stamp = _stamp(row, stream.cursor_field, stream.cursor_time_field)
    if stamp is None and stream.created_date_field:
        stamp = _stamp(row, stream.created_date_field, stream.created_time_field)
    return stamp or "", KEY_SEP.join("" if row.get(f) is None else str(row[f])
                                     for f in stream.key)


def _ge(date_field: str, time_field: str | None, since: dt.datetime, offset: bool) -> str:
    """``stamp >= since`` (whole seconds, rounded down: still inclusive)."""
    since = since.replace(microsecond=0)
    if time_field is None:
        return f"{date_field} ge {literal(since, 'datetimeoffset' if offset else 'datetime')}"
    day = since.replace(hour=0, minute=0, second=0)
    return (f"({date_field} gt {literal(day, 'datetime')} or ({date_field} eq "
            f"{literal(day, 'datetime')} and {time_field} ge {literal(since.time(), 'time')}))")


class SapReader:
    def __init__(self, client: SapClient):
        self.client = client

    def queries(self, stream: SapStreamConfig, since: Cursor | None) -> list[dict[str, str]]:
        """The ``$filter``/``$orderby`` pairs whose ordered results are merged."""
        base = [stream.filter] if stream.filter else []
        if since is None and stream.deleted_flag:
            base.append(f"{stream.deleted_flag} eq false")
        split = stream.cursor_time_field is not None
        plans = [(stream.cursor_field, stream.cursor_time_field, [])]
        if split and stream.created_date_field:
            plans = [(stream.cursor_field, stream.cursor_time_field,
                      [f"{stream.cursor_field} ne null"]),
                     (stream.created_date_field, stream.created_time_field,
                      [f"{stream.cursor_field} eq null"])]
        out = []
        for date_field, time_field, extra in plans:
            terms = base + extra
            if since is not None:
                terms.append(_ge(date_field, time_field, _since(since.value), not split))
            order = [date_field, *([time_field] if time_field else []), *stream.key]
            query = {"$orderby": ",".join(order), "$format": "json"}
            if terms:
                query["$filter"] = " and ".join(terms)
            if stream.select:
                query["$select"] = ",".join(stream.select)
            if stream.expand:
                query["$expand"] = ",".join(stream.expand)
            out.append(query)
        return out

    def _rows(self, stream: SapStreamConfig, query: dict[str, str]) -> Iterator[tuple]:
        for entity in self.client.entities(stream, query):
            row = clean(entity)
            gone = stream.deleted_flag and row.get(stream.deleted_flag)
            if gone:
                yield position(row, stream), None, key_text([row.get(f) for f in stream.key])
            else:
                yield position(row, stream), row, None

    def read(self, stream: SapStreamConfig, since: Cursor | None,
             batch_size: int) -> Iterator[Batch]:
        stamp = utc_text(_since(since.value)) if since is not None else ""
        sources = [self._rows(stream, q) for q in self.queries(stream, since)]
        yield from merged_batches(sources, since, stamp, batch_size)

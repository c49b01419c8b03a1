"""Reading a declared REST stream: page through the listing, then order locally.

A generic API promises nothing about order, and offset paging over a table
that changes while it is read can repeat rows. So the reader lists every
record the API returns for the request (with the cursor parameter, if the
stream has one, to ask only for recent changes), keeps those after the
``since`` position, de-duplicates by key (the latest version wins), sorts by
``(cursor, key)`` and only then cuts batches. Memory grows with the number of
changed records since the last run, which is what an incremental sync of an
API without a native change feed has to pay anyway.

Cursor values become ISO-8601 UTC strings (or numbers for ``format: number``)
and numeric keys are zero-padded in ``Cursor.key``, so positions compare
correctly as text.
"""

from __future__ import annotations

__all__ = ["RestReader", "CursorCodec", "build_paginator", "apply_rename"]

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from crm2erp.connectors.base import Batch, Cursor, Row
from crm2erp.connectors.rest.config import CursorConfig, RestStreamConfig
from crm2erp.errors import FatalError
from crm2erp.http import (
    CursorPaginator,
    HttpClient,
    NextLinkPaginator,
    OffsetPaginator,
    PagePaginator,
    Paginator,
)
from crm2erp.http.paginate import get_path

_ISO_OUT = "%Y-%m-%dT%H:%M:%S.%fZ"


class _HasMore:
    """Mixin: stop when the body's ``has_more`` flag is false, not at a short page."""

    has_more: str | None = None

    def next_request(self, body, response, url, params):
        if self.has_more is None:
            return super().next_request(body, response, url, params)
        if not get_path(body, self.has_more) or not self.records(body):
            return None
        return self._advance(url, params)


class _Offset(_HasMore, OffsetPaginator):
    def _advance(self, url, params):
        return url, {**params, self.offset_param: int(params[self.offset_param]) + self.limit}


class _Page(_HasMore, PagePaginator):
    def _advance(self, url, params):
        return url, {**params, self.page_param: int(params[self.page_param]) + 1}


class _Single(Paginator):
    def next_request(self, body, response, url, params):
        return None


def build_paginator(stream: RestStreamConfig) -> Paginator:
    p, records = stream.paginator, stream.records
    if p.type == "next_link":
        return NextLinkPaginator(p.next, records)
    if p.type == "cursor":
        paginator = CursorPaginator(p.cursor_path, p.param, records)
        if p.limit:
            first = paginator.first_params
            paginator.first_params = lambda params: {**first(params), p.limit_param: p.limit}
        return paginator
    if p.type == "offset":
        paginator = _Offset(p.limit, records, offset_param=p.offset_param,
                            limit_param=p.limit_param)
        paginator.has_more = p.has_more
        return paginator
    if p.type == "page":
        paginator = _Page(p.size, records, page_param=p.page_param, size_param=p.size_param,
                          first_page=p.first_page)
        paginator.has_more = p.has_more
        return paginator
    return _Single(records)


class CursorCodec:
    """Parse an API's cursor values and format the ``since`` request parameter."""

    def __init__(self, conf: CursorConfig):
        self.conf = conf
        self.zone = zoneinfo.ZoneInfo(conf.timezone)   # checked by the config

    @property
    def numeric(self) -> bool:
        return self.conf.format == "number"

    def _moment(self, value: Any) -> dt.datetime:
        fmt = self.conf.format
        if isinstance(value, dt.datetime):
            moment = value
        elif fmt in ("epoch", "epoch_ms"):
            seconds = float(value) / (1000 if fmt == "epoch_ms" else 1)
            return dt.datetime.fromtimestamp(seconds, dt.UTC)
        elif fmt == "iso":
            moment = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        else:
            moment = dt.datetime.strptime(str(value).strip(), fmt)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        return moment.astimezone(dt.UTC)

    def position(self, value: Any) -> Any:
        """A record's cursor value as the comparable, JSON-friendly cursor value."""
        if value in (None, ""):
            return None
        try:
            if self.numeric:
                number = Decimal(str(value))
                return int(number) if number == number.to_integral_value() else float(number)
            return self._moment(value).strftime(_ISO_OUT)
        except (ValueError, ArithmeticError):
            raise FatalError(f"cursor field {self.conf.field!r} value {value!r} does not "
                             f"match format {self.conf.format!r}; fix cursor.format") from None

    def since_position(self, cursor: Cursor) -> Any:
        """The engine's cursor (ISO-8601 or a number) as a comparable position."""
        if self.numeric:
            return self.position(cursor.value)
        return _iso(cursor.value).strftime(_ISO_OUT)

    def param(self, cursor: Cursor) -> Any:
        """``cursor`` in the API's own format, for the request parameter."""
        if self.numeric:
            value = Decimal(str(cursor.value))
            return value - 1 if self.conf.exclusive else value
        moment = _iso(cursor.value)
        if self.conf.exclusive:
            moment -= dt.timedelta(seconds=1)
        fmt = self.conf.format
        if fmt == "epoch":
            return int(moment.timestamp())
        if fmt == "epoch_ms":
            return int(moment.timestamp() * 1000)
        if fmt == "iso":
            return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        # the API compares in its own zone and resolution: round down to stay inclusive
        return moment.astimezone(self.zone).replace(tzinfo=None, microsecond=0).strftime(fmt)


def _iso(value: Any) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise FatalError(f"cursor {value!r} is not an ISO-8601 timestamp") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def key_text(value: Any) -> str:
    """A key as tie-breaker text: numbers zero-padded so they sort as numbers."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return f"{value:020d}"
    text = str(value)
    return text.zfill(20) if text.isdigit() else text


def apply_rename(record: dict[str, Any], rename: dict[str, str]) -> Row:
    if not rename:
        return dict(record)
    return {rename.get(name, name): value for name, value in record.items()}


class RestReader:
    def __init__(self, client: HttpClient, headers: dict[str, str]):
        self.client, self.headers = client, headers

    def read(self, name: str, stream: RestStreamConfig, since: Cursor | None,
             batch_size: int) -> Iterator[Batch]:
        codec = CursorCodec(stream.cursor) if stream.cursor else None
        params = dict(stream.params)
        if since is not None and codec is not None and stream.cursor.param:
            params[stream.cursor.param] = codec.param(since)
        lower = None
        if since is not None and codec is not None:
            lower = (codec.since_position(since),
                     since.key if since.key not in (None, "") else None)
        latest: dict[str, tuple[Any, str, Row, bool]] = {}
        paginator = build_paginator(stream)
        for page in paginator.pages(self.client, stream.path, params, headers=self.headers):
            for raw in paginator.records(page):
                if not isinstance(raw, dict):
                    raise FatalError(f"{self.client.name}: stream {name!r} record selector "
                                     f"{stream.records!r} gives {type(raw).__name__}s, not "
                                     "objects; fix 'records'")
                row = apply_rename(raw, stream.rename)
                key = get_path(row, stream.key)
                if key in (None, ""):
                    raise FatalError(f"{self.client.name}: a record of stream {name!r} has "
                                     f"no key field {stream.key!r}; fix 'key' or 'rename'")
                value = codec.position(get_path(row, stream.cursor.field)) if codec else None
                position = (value, key_text(key))
                if lower is not None and value is not None and (
                        value < lower[0] or (lower[1] is not None and position <= lower)):
                    continue
                gone = stream.deleted is not None and \
                    get_path(row, stream.deleted.field) == stream.deleted.equals
                previous = latest.get(position[1])
                if previous is None or (value is not None and previous[0] is not None
                                        and value >= previous[0]):
                    latest[position[1]] = (value, position[1], row, gone)
        ordered = sorted(latest.values(), key=lambda item: (item[0] is not None, item[0]
                                                            if item[0] is not None else 0,
                                                            item[1]))
        rows: list[Row] = []
        deleted: list[str] = []
        for start in range(0, len(ordered), max(1, batch_size)):
            chunk = ordered[start:start + max(1, batch_size)]
            rows = [row for _, _, row, gone in chunk if not gone]
            deleted = [str(get_path(row, stream.key)) for _, _, row, gone in chunk if gone]
            last = chunk[-1]
            cursor = Cursor(last[0], last[1]) if codec is not None and last[0] is not None \
                else None
            yield Batch(rows, cursor, deleted)

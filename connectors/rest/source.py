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

__all__ = ["RestReader", "CursorCodec", "build_paginator", "apply_rename", "nest",
           "select_records"]

import datetime as dt
import zoneinfo
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from crm2erp.connectors.base import Batch, Cursor, Row
from crm2erp.connectors.rest.config import CursorConfig, RestStreamConfig
from crm2erp.connectors.toolkit.batches import chunks
from crm2erp.connectors.toolkit.paging import paged_records
from crm2erp.connectors.toolkit.timestamps import utc_instant
from crm2erp.errors import ConfigError, FatalError
from crm2erp.http import (
    CursorPaginator,
    HttpClient,
    NextLinkPaginator,
    OffsetPaginator,
    PagePaginator,
    Paginator,
)
from crm2erp.http.paginate import get_path
from crm2erp.mapping.paths import make_setter

_ISO_OUT = "%Y-%m-%dT%H:%M:%S.%fZ"


def select_records(body: Any, path: str | None, where: str) -> list[Any]:
    """The record list at ``path`` of a reply; a missing path is a configuration error.

    An empty reply, or ``null`` at the path (how some APIs say "no records"),
    is an empty list. A non-empty reply without the path means the API's reply
    shape is not what ``records`` describes, so reading on would report a
    quiet success: the error names the path and the keys that were there.
    """
    if body in (None, "", [], {}):
        return []
    found: Any = body
    for depth, part in enumerate(path.split(".") if path else []):
        if not isinstance(found, Mapping) or part not in found:
            at = ".".join(path.split(".")[:depth]) or "the reply"
            keys = ", ".join(map(str, found)) if isinstance(found, Mapping) else \
                f"a {type(found).__name__}"
            raise ConfigError(f"{where}: the reply has no records at {path!r} "
                              f"({at} holds: {keys or 'nothing'}); fix 'records'")
        found = found[part]
    if found is None:
        return []
    if not isinstance(found, list):
        keys = ", ".join(map(str, found))[:300] if isinstance(found, Mapping) else ""
        raise ConfigError(f"{where}: {path or 'the reply'!s} is a {type(found).__name__}, "
                          f"not a list of records{f' (keys: {keys})' if keys else ''}; fix "
                          "'records'")
    return found


class _Records:
    """Mixin: pick records strictly (:func:`select_records`), naming stream and request."""

    where = "REST stream"

    def records(self, body):
        return select_records(body, self.records_path, self.where)


class _Numbered(_Records):
    """Mixin for offset and page paging: when a listing ends.

    An empty page always ends it; a ``has_more`` flag that is false, or as
    many records as ``total`` says there are, end it earlier. Offsets advance
    by the number of records received, so an API that caps ``limit`` below
    the one asked for loses nothing.
    """

    has_more: str | None = None
    total: str | None = None

    def first_params(self, params):
        self.seen = 0
        return super().first_params(params)

    def next_request(self, body, response, url, params):
        received = len(self.records(body))
        if not received:
            return None
        self.seen += received
        if self.has_more is not None and not get_path(body, self.has_more):
            return None
        if self.total is not None:
            total = get_path(body, self.total)
            if isinstance(total, bool) or not isinstance(total, int | str) \
                    or not str(total).isdigit():
                raise ConfigError(f"{self.where}: the reply's total {self.total!r} is "
                                  f"{total!r}, not a number; fix 'paginator.total'")
            if self.seen >= int(total):
                return None
        return self._advance(url, params, received)


class _Offset(_Numbered, OffsetPaginator):
    def _advance(self, url, params, received):
        return url, {**params, self.offset_param: int(params[self.offset_param]) + received}


class _Page(_Numbered, PagePaginator):
    def _advance(self, url, params, received):
        return url, {**params, self.page_param: int(params[self.page_param]) + 1}


class _Cursor(_Records, CursorPaginator):
    pass


class _NextLink(_Records, NextLinkPaginator):
    pass


class _Single(_Records, Paginator):
    def next_request(self, body, response, url, params):
        return None


def build_paginator(stream: RestStreamConfig, where: str = "REST stream") -> Paginator:
    """The paginator of ``stream``; ``where`` (connection, stream, path) starts its errors."""
    p, records = stream.paginator, stream.records
    if p.type == "next_link":
        paginator = _NextLink(p.next, records)
    elif p.type == "cursor":
        paginator = _Cursor(p.cursor_path, p.param, records)
        if p.limit:
            first = paginator.first_params
            paginator.first_params = lambda params: {**first(params), p.limit_param: p.limit}
    elif p.type == "offset":
        paginator = _Offset(p.limit, records, offset_param=p.offset_param,
                            limit_param=p.limit_param)
    elif p.type == "page":
        paginator = _Page(p.size, records, page_param=p.page_param, size_param=p.size_param,
                          first_page=p.first_page)
    else:
        paginator = _Single(records)
    if p.type in ("offset", "page"):
        paginator.has_more, paginator.total = p.has_more, p.total
    paginator.where = where
    return paginator


class _OrderCheck:
    """Offset and page paging: the listing must come sorted by ``order_by``, ascending.

    Records are compared as they arrive, across pages; the first one out of
    order stops the read with a configuration error, since position-based
    paging over any other order can skip records when data changes mid-run.
    """

    def __init__(self, stream: RestStreamConfig, where: str):
        self.field = getattr(stream.paginator, "order_by", None)
        self.where, self.last = where, None

    @staticmethod
    def _rank(value: Any) -> tuple:
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return (0, value, "")
        return (1, 0, str(value))

    def check(self, row: Row) -> None:
        if self.field is None:
            return
        value = get_path(row, self.field)
        if value is None:
            raise ConfigError(f"{self.where}: a record has no {self.field!r}, the field "
                              "paginator.order_by says the listing is sorted by")
        if self.last is not None and self._rank(value) < self._rank(self.last):
            raise ConfigError(
                f"{self.where}: the listing is not sorted by {self.field!r} ascending "
                f"({value!r} came after {self.last!r}); offset and page paging over "
                "another order can skip records. Sort it by that field (params) or use "
                "cursor or next_link paging")
        self.last = value


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
            return utc_instant(value, zone=self.zone, error=ValueError)
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
    return utc_instant(value, "cursor")


def key_text(value: Any) -> str:
    """A key as tie-breaker text: numbers zero-padded so they sort as numbers."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return f"{value:020d}"
    text = str(value)
    return text.zfill(20) if text.isdigit() else text


_MISSING = object()


def _take(row: dict[str, Any], path: str) -> Any:
    """Remove the value at dotted ``path`` from ``row``, copying the objects on the way."""
    if path in row:
        return row.pop(path)
    parts = path.split(".")
    holder = row
    for part in parts[:-1]:
        child = holder.get(part)
        if not isinstance(child, Mapping):
            return _MISSING
        holder[part] = child = dict(child)
        holder = child
    return holder.pop(parts[-1], _MISSING)


def apply_rename(record: dict[str, Any], rename: dict[str, str]) -> Row:
    """``record`` with fields renamed; dotted names read from and build nested objects."""
    if not rename:
        return dict(record)
    plain = {a: b for a, b in rename.items() if "." not in a and "." not in b}
    row = {plain.get(name, name): value for name, value in record.items()}
    for source, target in rename.items():
        if source not in plain and (value := _take(row, source)) is not _MISSING:
            make_setter(target)(row, value)
    return row


def nest(row: Row) -> Row:
    """Row fields named by dotted paths (``custom_fields.erp_id``) as nested objects."""
    if not any("." in name for name in row):
        return row
    out: Row = {}
    for name, value in row.items():
        make_setter(name)(out, value)
    return out


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
        where = f"{self.client.name}: stream {name!r}: GET {stream.path}"
        paginator = build_paginator(stream, where)
        order = _OrderCheck(stream, where)
        for raw in paged_records(paginator, self.client, stream.path, params,
                                 headers=self.headers):
            if not isinstance(raw, dict):
                raise ConfigError(f"{where}: the records at {stream.records!r} are "
                                  f"{type(raw).__name__}s, not objects; fix 'records'")
            row = apply_rename(raw, stream.rename)
            order.check(row)
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
        for chunk in chunks(ordered, batch_size):
            rows = [row for _, _, row, gone in chunk if not gone]
            deleted = [str(get_path(row, stream.key)) for _, _, row, gone in chunk if gone]
            last = chunk[-1]
            cursor = Cursor(last[0], last[1]) if codec is not None and last[0] is not None \
                else None
            yield Batch(rows, cursor, deleted)

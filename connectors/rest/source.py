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

__all__ = ["RestReader", "CursorCodec", "apply_rename", "nest", "select_records"]

from collections.abc import Iterator
from typing import Any

from crm2erp.connectors.base import Batch, Cursor
from crm2erp.connectors.rest.config import RestConfig, RestStreamConfig
from crm2erp.connectors.toolkit.cursors import CursorCodec
from crm2erp.connectors.toolkit.fields import apply_rename, nest
from crm2erp.connectors.toolkit.listing import (
    AscendingCheck,
    Entry,
    build_paginator,
    key_text,
    latest_batches,
    select_records,
)
from crm2erp.connectors.toolkit.paging import paged_records
from crm2erp.errors import ConfigError, FatalError
from crm2erp.http import HttpClient
from crm2erp.http.paginate import get_path


class RestReader:
    def __init__(self, client: HttpClient, config: RestConfig):
        self.client, self.headers = client, dict(config.headers)

    def read(self, name: str, stream: RestStreamConfig, since: Cursor | None,
             batch_size: int) -> Iterator[Batch]:
        codec = CursorCodec(stream.cursor) if stream.cursor else None
        params = dict(stream.params)
        after = None
        if since is not None and codec is not None:
            if stream.cursor.param:
                params[stream.cursor.param] = codec.param(since)
            after = (codec.since_position(since), since.key or None)
        where = f"{self.client.name}: stream {name!r}: GET {stream.path}"
        order = AscendingCheck(getattr(stream.paginator, "order_by", None), where)

        def entry(raw: Any) -> Entry:
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
            gone = stream.deleted is not None and \
                get_path(row, stream.deleted.field) == stream.deleted.equals
            return value, key_text(key), row, str(key) if gone else None

        paginator = build_paginator(stream.paginator, stream.records, where)
        records = paged_records(paginator, self.client, stream.path, params,
                                headers=self.headers)
        yield from latest_batches(map(entry, records), after, batch_size)

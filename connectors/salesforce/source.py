"""Reading Salesforce streams: REST query paging and Bulk API 2.0 query jobs.

Incremental reads use ``SystemModstamp`` (bumped by every change, including
system ones, unlike ``LastModifiedDate``) with ``>=`` and
``ORDER BY SystemModstamp, Id``. Many records share one timestamp after a
mass update, so the batch cursor is ``(SystemModstamp, Id)``: a run that
resumes from a batch cursor skips exactly the rows at that timestamp it
already has, wherever the page or batch boundary fell.

Incremental REST reads go through ``queryAll`` with ``IsDeleted`` selected,
so deletions (still in the recycle bin, 15 days) arrive in the same ordered
stream and become ``Batch.deleted_keys``.

Bulk API 2.0 cannot ORDER BY, so a bulk read only moves the watermark at its
very end: its batches carry no cursor except the last, which carries the
greatest ``(SystemModstamp, Id)`` seen.

A stream's ``children`` (an opportunity's line items) are embedded batch by
batch: one ``SELECT ... FROM <child> WHERE <foreign key> IN (...)`` query per
``CHILD_CHUNK`` parents, rows in Id order under the child's name. A change to
a line item alone does not move the parent's cursor; Salesforce recalculates
the opportunity's Amount when its lines change, which does.
"""

from __future__ import annotations

__all__ = ["SalesforceReader", "CHILD_CHUNK", "quote"]

import csv
import io
import logging
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from crm2erp.connectors.base import Batch, Cursor, Row
from crm2erp.connectors.salesforce.api import parse_limit_info
from crm2erp.connectors.salesforce.config import ChildConfig, SalesforceConfig, StreamConfig
from crm2erp.connectors.toolkit.children import children_by_parent, embed_children
from crm2erp.connectors.toolkit.jobs import poll_until
from crm2erp.connectors.toolkit.ordering import OrderedBatcher
from crm2erp.connectors.toolkit.paging import header_pages, paged_records
from crm2erp.connectors.toolkit.timestamps import iso_millis, utc_instant, utc_text
from crm2erp.errors import FatalError
from crm2erp.http import HttpClient, NextLinkPaginator, decode_json

log = logging.getLogger(__name__)
CHILD_CHUNK = 200  # parent Ids per child query: ~4 KB of SOQL, far below the 100,000 limit


def quote(value: str) -> str:
    """A SOQL string literal (the emulator's parser: :mod:`crm2erp.emulators.salesforce.soql`)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SalesforceReader:
    def __init__(self, client: HttpClient, config: SalesforceConfig):
        self.client, self.config = client, config
        self.api_usage: tuple[int, int] | None = None
        self._types: dict[str, dict[str, str]] = {}

    def soql(self, stream: StreamConfig, since: Cursor | None, *, deletes: bool,
             order: bool = True, count: bool = False) -> str:
        fields = dict.fromkeys([*stream.fields, *(["IsDeleted"] if deletes else [])])
        text = f"SELECT {'COUNT()' if count else ', '.join(fields)} FROM {stream.sobject}"
        if since is not None:
            stamp = utc_instant(since.value, "Salesforce cursor value")
            # whole seconds, rounded down: still inclusive; finer rows are filtered locally
            text += f" WHERE {stream.cursor_field} >= {utc_text(stamp, millis=False)}"
        if order and not count:
            text += f" ORDER BY {stream.cursor_field}, Id"
        return text

    def read(self, stream: StreamConfig, since: Cursor | None, batch_size: int) -> Iterator[Batch]:
        """Batches in ``(SystemModstamp, Id)`` order (REST) or with the cursor on the last
        only (Bulk), the stream's children embedded into each."""
        deletes = since is not None and stream.track_deletes
        endpoint = "queryAll" if deletes else "query"
        soql = partial(self.soql, stream, since, deletes=deletes)
        if self.config.mode == "bulk" or self._over_threshold(endpoint, soql(count=True)):
            batcher = OrderedBatcher(batch_size, since, with_cursor=False)
            records = self._bulk_query(stream, endpoint, soql(order=False))
        else:
            batcher = OrderedBatcher(batch_size, since)
            records = self.query(soql(), endpoint=endpoint, page_size=self.config.page_size)
        for batch in batcher.batches(self._item(stream, record) for record in records):
            yield embed_children(batch, "Id", stream.children, partial(self._children, stream))

    def query(self, soql: str, *, endpoint: str = "query",
              page_size: int | None = None) -> Iterator[Row]:
        """The records ``soql`` selects, page after page (``nextRecordsUrl``), without
        their ``attributes``; the API usage is noted after every page."""
        options = {"Sforce-Query-Options": f"batchSize={page_size}"} if page_size else None
        for record in paged_records(NextLinkPaginator("nextRecordsUrl", "records"), self.client,
                                    f"{self.config.api_path}/{endpoint}", {"q": soql},
                                    headers=options, each_page=self._note_usage):
            record.pop("attributes", None)
            yield record

    def select_in(self, stream: StreamConfig, field: str, values: list[str],
                  then: str = "") -> Iterator[Row]:
        """The records of ``stream`` whose ``field`` is one of ``values`` (``then``: an
        ``ORDER BY``)."""
        return self.query(f"SELECT {', '.join(stream.fields)} FROM {stream.sobject} WHERE "
                          f"{field} IN ({', '.join(quote(v) for v in values)}){then}")

    @staticmethod
    def _item(stream: StreamConfig, record: dict) -> tuple[str, str, Row | None]:
        """``(stamp, Id, row)`` for the batcher; row None for a deleted record."""
        deleted = bool(record.get("IsDeleted"))
        if "IsDeleted" not in stream.fields:
            record.pop("IsDeleted", None)
        stamp = iso_millis(record[stream.cursor_field], "Salesforce cursor value")
        return stamp, str(record["Id"]), None if deleted else record

    def _children(self, parent: StreamConfig, child: ChildConfig,
                  ids: list[str]) -> dict[str, list[Row]]:
        """``{parent Id: [child rows in Id order]}`` for the given parent Ids."""
        stream, key = self.config.streams[child.stream], self.config.foreign_key(parent, child)
        out = children_by_parent(ids, key, lambda chunk: self.select_in(
            stream, key, chunk, f" ORDER BY {key}, Id"), chunk=CHILD_CHUNK)
        log.debug("embedded %d %s rows into %d %s rows", sum(map(len, out.values())),
                  stream.sobject, len(ids), parent.sobject)
        return out

    def _over_threshold(self, endpoint: str, count: str) -> bool:
        """At least ``bulk_threshold`` records for the ``count`` query (asked only when
        one is set)."""
        if self.config.bulk_threshold is None:
            return False
        body = self.client.get_json(f"{self.config.api_path}/{endpoint}", params={"q": count})
        self._note_usage()
        return int(body.get("totalSize", 0)) >= self.config.bulk_threshold

    # -- Bulk API 2.0 -----------------------------------------------------
    def _bulk_query(self, stream: StreamConfig, operation: str, soql: str) -> Iterator[Row]:
        """The typed records of a Bulk API 2.0 query job: created, awaited, read page
        after page (``Sforce-Locator``), then deleted."""
        jobs = f"{self.config.api_path}/jobs/query"
        resp = self.client.request("POST", jobs, json={
            "operation": operation, "contentType": "CSV", "query": soql,
            "columnDelimiter": "COMMA", "lineEnding": "LF"})
        if resp.status_code >= 400:
            raise FatalError(f"Salesforce bulk query job for {stream.sobject} was refused "
                             f"(HTTP {resp.status_code}): {resp.text[:300]}")
        job_id = decode_json(resp)["id"]

        def finished() -> bool:
            info = self.client.get_json(f"{jobs}/{job_id}")
            if info.get("state") in ("Failed", "Aborted"):
                raise FatalError(f"Salesforce bulk query job {job_id} for {stream.sobject} ended "
                                 f"{info['state']}: {info.get('errorMessage', 'no message')}")
            return info.get("state") == "JobComplete"

        poll_until(finished, timeout=self.config.bulk_timeout, sleep=self.client.sleep,
                   interval=self.config.bulk_poll_interval,
                   expired=f"Salesforce bulk query job {job_id} for {stream.sobject} did not "
                   f"finish within bulk_timeout={self.config.bulk_timeout}s")
        if stream.sobject not in self._types:   # described once per connection
            self._types[stream.sobject] = self.describe(stream.sobject)
        types = self._types[stream.sobject]
        for page in header_pages(self.client, f"{jobs}/{job_id}/results",
                                 {"maxRecords": self.config.bulk_max_records},
                                 header="Sforce-Locator", param="locator", expect_json=False,
                                 validate=_check_count, headers={"Accept": "text/csv"}):
            self._note_usage()
            for raw in csv.DictReader(io.StringIO(page.text)):
                yield {k: _typed(types.get(k, "string"), v) for k, v in raw.items()}
        self.client.request("DELETE", f"{jobs}/{job_id}", expect_json=False)

    def describe(self, sobject: str) -> dict[str, str]:
        """``{field name: type}`` of ``sobject``, as its ``describe`` says now."""
        body = self.client.get_json(f"{self.config.api_path}/sobjects/{sobject}/describe")
        return {f["name"]: f["type"] for f in body.get("fields", [])}

    def _note_usage(self) -> None:
        usage = parse_limit_info(self.client.last_response)
        if usage:
            self.api_usage = usage
            if usage[1] and usage[0] >= 0.9 * usage[1]:
                log.warning("Salesforce API usage at %d/%d of the daily limit", *usage)


def _check_count(resp) -> None:
    expected = resp.headers.get("Sforce-NumberOfRecords")
    if expected is None:
        return
    rows = sum(1 for _ in csv.reader(io.StringIO(resp.text))) - 1
    if max(rows, 0) != int(expected):
        raise ValueError(f"CSV page has {rows} rows, Sforce-NumberOfRecords says {expected}")


def _number(value: str) -> Any:
    """A Decimal, or the text as it came when it is not a number."""
    try:
        return Decimal(value)
    except InvalidOperation:
        return value


#: how a Bulk CSV cell of a describe ``type`` becomes a value (any other type stays text)
_CELLS: dict[str, Callable[[str], Any]] = {
    "boolean": lambda value: value.lower() == "true", "int": int,
    "double": _number, "currency": _number, "percent": _number}


def _typed(kind: str, value: str | None) -> Any:
    """A Bulk CSV cell as the same Python value the REST API would give."""
    return None if value is None or value == "" else _CELLS.get(kind, str)(value)

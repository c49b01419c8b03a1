"""Reading Dataverse tables through the Web API (OData v4).

``GET /api/data/v9.2/{entity_set}?$select=...&$filter=modifiedon ge <t>
&$orderby=modifiedon asc,<key> asc`` with ``Prefer: odata.maxpagesize=N``,
following ``@odata.nextLink``. ``modifiedon`` has whole-second precision, so
many rows share a value; Dataverse orders GUIDs in SQL Server's byte order,
not as text, so rows sharing a timestamp are put in key order locally
(:class:`~crm2erp.connectors.hubspot.ordering.OrderedBatcher`) and a resumed
read skips exactly the rows it already has.

Deleted rows are gone from the table. With ``track_deletes`` (the default)
incremental reads ask the audit log for ``Delete`` operations on the table
since the watermark (``audits?$filter=objecttypecode eq 'account' and
operation eq 3 and createdon ge <t>``) and surface them as
``Batch.deleted_keys``; auditing must be on for the table, or nothing is
found.

A stream's ``children`` (an opportunity's products) are embedded batch by
batch: one ``$filter=_opportunityid_value eq <id> or ...`` query per
``CHILD_CHUNK`` parents, rows in key order under the child's name; its
``expand`` lookups (the product of an opportunity product) come inline with
``$expand=productid($select=productnumber,name)``.
"""

from __future__ import annotations

__all__ = ["DynamicsReader", "odata_datetime", "CHILD_CHUNK"]

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from crm2erp.connectors.base import Batch, Cursor, Row
from crm2erp.connectors.dynamics.api import ODATA_HEADERS
from crm2erp.connectors.dynamics.config import DynamicsConfig, DynamicsStreamConfig
from crm2erp.connectors.toolkit.children import children_by_parent, embed_children
from crm2erp.connectors.toolkit.odata import odata_string
from crm2erp.connectors.toolkit.ordering import OrderedBatcher
from crm2erp.connectors.toolkit.paging import paged_records
from crm2erp.connectors.toolkit.targets import rows_by_key
from crm2erp.connectors.toolkit.timestamps import iso_millis
from crm2erp.http import HttpClient, ODataPaginator

log = logging.getLogger(__name__)
AUDIT_DELETE = 3  # audit.operation: 1 Create, 2 Update, 3 Delete, 4 Access
CHILD_CHUNK = 50  # "or" terms per $filter, as for look-ups: URLs stay far below 32 KB


def odata_datetime(stamp: str) -> str:
    """An ISO timestamp as an OData literal, rounded down to the second (still inclusive)."""
    return iso_millis(stamp)[:19] + "Z"


def clean(record: dict[str, Any]) -> Row:
    """A Web API record without its ``@odata.*`` and ``@Microsoft.*`` annotations
    (expanded lookups too)."""
    return {k: clean(v) if isinstance(v, dict) else v
            for k, v in record.items() if "@" not in k}


def _expand(stream: DynamicsStreamConfig) -> dict[str, str]:
    if not stream.expand:
        return {}
    return {"$expand": ",".join(f"{nav}($select={','.join(cols)})" if cols else nav
                                for nav, cols in stream.expand.items())}


class DynamicsReader:
    def __init__(self, client: HttpClient, config: DynamicsConfig):
        self.client, self.config = client, config

    def _headers(self) -> dict[str, str]:
        return {**ODATA_HEADERS, "Prefer": f"odata.maxpagesize={self.config.page_size}"}

    def query(self, stream: DynamicsStreamConfig, since: Cursor | None) -> dict[str, str]:
        params = {"$select": ",".join(stream.fields),
                  "$orderby": f"{stream.cursor_field} asc,{stream.key} asc"}
        if since is not None:
            params["$filter"] = f"{stream.cursor_field} ge {odata_datetime(since.value)}"
        return params | _expand(stream)

    def _records(self, url: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        yield from paged_records(ODataPaginator(), self.client, url, params,
                                headers=self._headers())

    def read(self, stream: DynamicsStreamConfig, since: Cursor | None,
             batch_size: int) -> Iterator[Batch]:
        for batch in self._read(stream, since, batch_size):
            yield self._embed(stream, batch)

    def _read(self, stream: DynamicsStreamConfig, since: Cursor | None,
              batch_size: int) -> Iterator[Batch]:
        deletions = self.deleted_since(stream, since) \
            if since is not None and stream.track_deletes else []
        batcher = OrderedBatcher(batch_size, since, deletions=deletions)
        url = f"{self.config.api_path}/{stream.entity_set}"
        rows = map(clean, self._records(url, self.query(stream, since)))
        yield from batcher.batches((iso_millis(row[stream.cursor_field]), str(row[stream.key]),
                                    row) for row in rows)

    def _embed(self, stream: DynamicsStreamConfig, batch: Batch) -> Batch:
        return embed_children(batch, stream.key, stream.children, lambda child, ids: (
            self.children(self.config.streams[child.stream],
                          self.config.foreign_key(stream, child), ids)))

    def children(self, child: DynamicsStreamConfig, foreign_key: str,
                 ids: list[str]) -> dict[str, list[Row]]:
        """``{parent id: [child rows in key order]}`` for the given parent ids (GUIDs)."""
        url = f"{self.config.api_path}/{child.entity_set}"

        def query(chunk: list[str]) -> Iterator[Row]:
            params = {"$select": ",".join(child.fields),
                      "$filter": " or ".join(f"{foreign_key} eq {i}" for i in chunk),
                      "$orderby": f"{foreign_key} asc,{child.key} asc"} | _expand(child)
            return map(clean, self._records(url, params))

        return children_by_parent(ids, foreign_key, query, chunk=CHILD_CHUNK)

    def deleted_since(self, stream: DynamicsStreamConfig,
                      since: Cursor) -> list[tuple[str, str]]:
        """``(deleted at, id)`` of the table's rows deleted since the watermark (audit log)."""
        params = {"$select": "_objectid_value,createdon,operation",
                  "$filter": f"objecttypecode eq {odata_string(stream.logical_name)} and "
                             f"operation eq {AUDIT_DELETE} and "
                             f"createdon ge {odata_datetime(since.value)}",
                  "$orderby": "createdon asc"}
        return [(iso_millis(record["createdon"]), str(record["_objectid_value"]))
                for record in self._records(f"{self.config.api_path}/audits", params)
                if record.get("_objectid_value")]

    def lookup(self, stream: DynamicsStreamConfig, column: str,
               keys: Sequence[str]) -> dict[str, Row]:
        """Current rows whose ``column`` is one of ``keys`` (chunks of 50 ``or`` terms)."""
        url = f"{self.config.api_path}/{stream.entity_set}"

        def fetch(chunk: list[str]) -> Iterator[tuple[str, Row]]:
            flt = " or ".join(f"{column} eq {odata_string(k)}" for k in chunk)
            for record in self._records(url, {"$select": ",".join(stream.fields),
                                              "$filter": flt}):
                row = clean(record)
                yield str(row.get(column)), row

        return rows_by_key(keys, CHILD_CHUNK, fetch)

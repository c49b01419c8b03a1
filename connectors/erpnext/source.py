"""Reading ERPNext DocTypes: ``/api/resource`` with ``filters`` and offset paging.

Incremental reads ask for ``[["modified", ">=", watermark]]`` ordered by
``modified asc, name asc`` (the tie-break), page with ``limit_start`` /
``limit_page_length``, and drop rows at or before the batch cursor
``(modified, name)`` locally. Frappe keeps a ``Deleted Document`` for every
deletion; incremental reads merge those (by ``creation``) into the same
ordered stream as ``Batch.deleted_keys``. DocTypes with child tables (Sales
Invoice items) are read as whole documents, one ``GET`` each, because list
calls return parent fields only.
"""

from __future__ import annotations

__all__ = ["ErpNextReader", "resource"]

import json
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

from crm2erp.connectors.base import Batch, Cursor
from crm2erp.connectors.erpnext.api import frappe_error, to_cursor, to_frappe
from crm2erp.connectors.erpnext.config import ErpNextConfig, ErpNextStreamConfig
from crm2erp.connectors.toolkit.ordering import merged_batches
from crm2erp.connectors.toolkit.paging import paged_records
from crm2erp.errors import FatalError
from crm2erp.http import HttpClient, OffsetPaginator, decode_json


def resource(doctype: str, name: str | None = None) -> str:
    path = f"/api/resource/{quote(doctype)}"
    return f"{path}/{quote(name, safe='')}" if name is not None else path


class ErpNextReader:
    def __init__(self, client: HttpClient, config: ErpNextConfig):
        self.client, self.config = client, config

    def list(self, doctype: str, fields: list[str], filters: list[list[Any]],
             order_by: str) -> Iterator[dict[str, Any]]:
        paginator = OffsetPaginator(self.config.page_size, "data", offset_param="limit_start",
                                    limit_param="limit_page_length")
        params = {"fields": json.dumps(fields), "filters": json.dumps(filters),
                  "order_by": order_by}
        yield from paged_records(paginator, self.client, resource(doctype), params)

    def document(self, doctype: str, name: str) -> dict[str, Any] | None:
        resp = self.client.request("GET", resource(doctype, name))
        if resp.status_code == 404:
            return None  # deleted between the list call and now
        if resp.status_code >= 400:
            raise FatalError(f"ERPNext: GET {doctype} {name}: "
                             f"{frappe_error(resp.status_code, resp.content)}")
        return decode_json(resp)["data"]

    def documents(self, doctype: str, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The whole document (child tables too) of each listed row, in order; a row
        deleted since the list call is left out."""
        for row in rows:
            doc = self.document(doctype, str(row["name"]))
            if doc is not None:
                yield doc

    def _rows(self, stream: ErpNextStreamConfig, since: Cursor | None) -> Iterator[tuple]:
        zone, field = self.config.time_zone, stream.cursor_field
        filters = list(stream.filters)
        if since is not None:
            filters.append([field, ">=", to_frappe(since.value, zone)])
        fields = list(dict.fromkeys([*stream.fields, "name", field]))
        rows = self.list(stream.doctype, fields, filters, f"{field} asc, name asc")
        for row in self.documents(stream.doctype, rows) if stream.children else rows:
            yield (to_cursor(row[field], zone), str(row["name"])), row, None

    def _deleted(self, stream: ErpNextStreamConfig, since: Cursor) -> Iterator[tuple]:
        zone = self.config.time_zone
        filters = [["deleted_doctype", "=", stream.doctype],
                   ["creation", ">=", to_frappe(since.value, zone)]]
        for row in self.list("Deleted Document", ["name", "deleted_name", "creation"],
                             filters, "creation asc, name asc"):
            gone = str(row["deleted_name"])
            yield (to_cursor(row["creation"], zone), gone), None, gone

    def read(self, stream: ErpNextStreamConfig, since: Cursor | None,
             batch_size: int) -> Iterator[Batch]:
        sources = [self._rows(stream, since)]
        if since is not None and stream.track_deletes:
            sources.append(self._deleted(stream, since))
        stamp = to_cursor(since.value, "UTC") if since is not None else ""
        yield from merged_batches(sources, since, stamp, batch_size)

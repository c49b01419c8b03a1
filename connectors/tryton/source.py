"""Read side: incremental reads of parties, products, sales, sale states and invoices.

A record's change time is ``write_date``, or ``create_date`` while it has
never been written (``write_date`` is NULL until the first write). Tryton's
``order`` parameter only takes fields, not ``COALESCE(write_date,
create_date)``, so a read runs in two steps:

1. an id scan: ``search_read`` of ``id``, the key and both dates for every
   record changed at or after ``since``, paged by id (keyset, no offsets);
2. the scan is sorted by ``(change time, key)`` in Python and the full
   records are read by id, ``batch_size`` at a time, in that order.

The scan is small (four fields a record) even for a full first load, and
ordering on the client keeps the ``(cursor, key)`` contract exact.
"""

from __future__ import annotations

__all__ = ["TrytonReader", "STREAM_MODELS"]

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from crm2erp.connectors.base import Batch, Cursor
from crm2erp.connectors.toolkit.batches import chunks
from crm2erp.connectors.tryton.client import TrytonClient
from crm2erp.connectors.tryton.common import NOT_ACTIVE, cursor_value, parse_cursor
from crm2erp.connectors.tryton.config import TrytonConfig
from crm2erp.connectors.tryton.parties import party_rows
from crm2erp.connectors.tryton.rows import (
    INVOICE_FIELDS,
    PARTY_FIELDS,
    PRODUCT_FIELDS,
    SALE_FIELDS,
    invoice_row,
    iso_utc,
    product_row,
    sale_rows,
)

log = logging.getLogger(__name__)
SCAN_PAGE = 5000

# stream -> (model, key field, extra domain, context)
STREAM_MODELS: dict[str, tuple[str, str, list, dict]] = {
    "parties": ("party.party", "code", [], NOT_ACTIVE),
    "products": ("product.product", "code", [], NOT_ACTIVE),
    "sales": ("sale.sale", "reference", [("reference", "!=", None)], {}),
    "sale_states": ("sale.sale", "reference", [("reference", "!=", None)], {}),
    "invoices": ("account.invoice", "id", [("type", "=", "out")], {}),
}
SALE_STATE_FIELDS = ("reference", "number", "state", "invoice_state", "shipment_state",
                     "create_date", "write_date")


class TrytonReader:
    def __init__(self, client: TrytonClient, config: TrytonConfig):
        self.client, self.config = client, config

    def _model(self, stream: str) -> tuple[str, str, list, dict]:
        model, key, extra, ctx = STREAM_MODELS[stream]
        if stream == "parties":
            key = self.config.party.key_field
        return model, key, extra, ctx

    def scan(self, stream: str, since: Cursor | None) -> list[tuple[Any, str, int]]:
        """``(change time, key, id)`` of every record changed at or after ``since``, sorted."""
        model, key, extra, ctx = self._model(stream)
        domain: list[Any] = list(extra)
        moment = parse_cursor(since.value) if since is not None else None
        if moment is not None:
            domain.append(["OR", ("write_date", ">=", moment),
                           [("write_date", "=", None), ("create_date", ">=", moment)]])
        fields = ["create_date", "write_date"] + ([key] if key != "id" else [])
        found: list[tuple[Any, str, int]] = []
        last_id = 0
        while True:
            page = self.client.model(model, "search_read", [*domain, ("id", ">", last_id)],
                                     0, SCAN_PAGE, [["id", "ASC"]], fields,
                                     context=ctx or None)
            for rec in page:
                value = rec["id"] if key == "id" else rec.get(key)
                if value in (None, ""):
                    log.debug("tryton %s: record %s has no %s; skipped", stream, rec["id"], key)
                    continue
                found.append((cursor_value(rec), str(value), rec["id"]))
            if len(page) < SCAN_PAGE:
                break
            last_id = page[-1]["id"]
        found.sort(key=lambda item: (item[0], item[1]))
        return found

    def read(self, stream: str, since: Cursor | None, batch_size: int) -> Iterator[Batch]:
        size = min(batch_size, self.config.page_size)
        scanned = self.scan(stream, since)
        for part in chunks(scanned, size):
            rows = self.rows(stream, [rid for _, _, rid in part])
            last = part[-1]
            yield Batch(rows=rows, cursor=Cursor(iso_utc(last[0]), last[1]))

    def rows(self, stream: str, ids: Sequence[int]) -> list[dict[str, Any]]:
        """Full rows of the records ``ids``, in that order."""
        order = {rid: n for n, rid in enumerate(ids)}
        rows = self._rows(stream, ids)
        rows.sort(key=lambda row: order.get(row["id"], len(order)))
        return rows

    def _rows(self, stream: str, ids: Sequence[int]) -> list[dict[str, Any]]:
        model, key, _, ctx = self._model(stream)
        call = self.client.model
        if stream == "parties":
            recs = call(model, "read", list(ids), [key, *PARTY_FIELDS], context=NOT_ACTIVE)
            return party_rows(self.client, recs, key)
        if stream == "products":
            recs = call(model, "read", list(ids), ["code", *PRODUCT_FIELDS], context=NOT_ACTIVE)
            return [product_row(p) for p in recs]
        if stream == "sales":
            return sale_rows(self.client, call(model, "read", list(ids), list(SALE_FIELDS)))
        if stream == "sale_states":
            recs = call(model, "read", list(ids), list(SALE_STATE_FIELDS))
            return [{"reference": s["reference"], "id": s["id"], "number": s["number"],
                     "state": s["state"], "invoice_state": s["invoice_state"],
                     "shipment_state": s["shipment_state"],
                     "updated_at": iso_utc(cursor_value(s))} for s in recs]
        recs = call(model, "read", list(ids), list(INVOICE_FIELDS))
        sale_ids = sorted({s for inv in recs for s in inv.get("sales") or []})
        refs = {s["id"]: s["reference"] for s in call(
            "sale.sale", "read", sale_ids, ["reference"])} if sale_ids else {}
        return [invoice_row(inv, refs) for inv in recs]

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

from collections.abc import Iterator, Sequence
from typing import Any

from crm2erp.connectors.base import Batch, Cursor, Rejected
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

    def scan(self, stream: str, since: Cursor | None) -> list[tuple[Any, str | None, int]]:
        """``(change time, key, id)`` of every record changed at or after ``since``, sorted;
        the key is None for a record that has none (:meth:`read` rejects it)."""
        model, key, extra, ctx = self._model(stream)
        domain: list[Any] = list(extra)
        moment = parse_cursor(since.value) if since is not None else None
        if moment is not None:
            domain.append(["OR", ("write_date", ">=", moment),
                           [("write_date", "=", None), ("create_date", ">=", moment)]])
        fields = ["create_date", "write_date"] + ([key] if key != "id" else [])
        found: list[tuple[Any, str | None, int]] = []
        last_id = 0
        while True:
            page = self.client.model(model, "search_read", [*domain, ("id", ">", last_id)],
                                     0, SCAN_PAGE, [["id", "ASC"]], fields,
                                     context=ctx or None)
            for rec in page:
                value = rec["id"] if key == "id" else rec.get(key)
                found.append((cursor_value(rec), None if value in (None, "") else str(value),
                              rec["id"]))
            if len(page) < SCAN_PAGE:
                break
            last_id = page[-1]["id"]
        found.sort(key=lambda item: (item[0], item[1] or "", item[2]))
        return found

    def read(self, stream: str, since: Cursor | None, batch_size: int) -> Iterator[Batch]:
        """Batches of ``batch_size`` rows (at most ``page_size``) in ``(change time, key)``
        order.

        A record without a key value cannot take its place in the ``(cursor, key)``
        order: it is a :class:`Rejected` (model and id named, the id as its key) in
        the batch whose cursor passes its change time, so the watermark never moves
        past it without its dead letter; rejected records after the last row come
        in a batch of their own.
        """
        size = min(batch_size, self.config.page_size)
        model, key, _, _ = self._model(stream)
        part: list[tuple[Any, str | None, int]] = []
        keyed = 0
        for item in self.scan(stream, since):
            part.append(item)
            keyed += item[1] is not None
            if keyed == size:
                yield self._batch(stream, model, key, part)
                part, keyed = [], 0
        if part:
            yield self._batch(stream, model, key, part)

    def _batch(self, stream: str, model: str, key: str,
               part: list[tuple[Any, str | None, int]]) -> Batch:
        rows = self.rows(stream, [rid for _, _, rid in part])
        by_id = {row["id"]: row for row in rows if "id" in row}
        keyed = [item for item in part if item[1] is not None]
        rejected = [Rejected(str(rid), f"Tryton {model} id {rid}",
                             f"the record has no {key!r}, the key of the stream "
                             f"{stream!r}; fill it in Tryton",
                             by_id.get(rid, {"id": rid}))
                    for _, k, rid in part if k is None]
        wanted = {rid for _, _, rid in keyed}
        last = keyed[-1] if keyed else None
        return Batch(rows=[r for r in rows if r.get("id") in wanted],
                     cursor=Cursor(iso_utc(last[0]), last[1]) if last else None,
                     rejected=rejected)

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

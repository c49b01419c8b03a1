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

__all__ = ["TrytonReader", "STREAMS"]

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from crm2erp.connectors.base import Batch, Cursor, Rejected, Row
from crm2erp.connectors.tryton.client import TrytonClient
from crm2erp.connectors.tryton.common import NOT_ACTIVE, cursor_value, parse_cursor, search_in
from crm2erp.connectors.tryton.config import TrytonConfig
from crm2erp.connectors.tryton.parties import party_rows
from crm2erp.connectors.tryton.rows import (
    INVOICE_FIELDS,
    PARTY_FIELDS,
    PRODUCT_FIELDS,
    SALE_FIELDS,
    SALE_STATE_FIELDS,
    invoice_rows,
    iso_utc,
    product_rows,
    sale_rows,
    sale_state_rows,
)

SCAN_PAGE = 5000


class Stream(NamedTuple):
    """Where a stream's records are and how they become rows."""

    model: str
    key: str
    #: what is read of a record besides its key
    fields: tuple[str, ...]
    #: ``rows(client, records, key)``: the rows of records read with the key and ``fields``
    rows: Callable[[TrytonClient, list[dict], str], list[Row]]
    domain: tuple = ()
    #: the context of the reads (``NOT_ACTIVE``: archived records too)
    context: dict[str, Any] | None = None


_REFERENCED = (("reference", "!=", None),)
STREAMS: dict[str, Stream] = {
    "parties": Stream("party.party", "code", PARTY_FIELDS, party_rows, context=NOT_ACTIVE),
    "products": Stream("product.product", "code", PRODUCT_FIELDS, product_rows,
                       context=NOT_ACTIVE),
    "sales": Stream("sale.sale", "reference", SALE_FIELDS, sale_rows, _REFERENCED),
    "sale_states": Stream("sale.sale", "reference", SALE_STATE_FIELDS, sale_state_rows,
                          _REFERENCED),
    "invoices": Stream("account.invoice", "id", INVOICE_FIELDS, invoice_rows,
                       (("type", "=", "out"),)),
}


class TrytonReader:
    def __init__(self, client: TrytonClient, config: TrytonConfig):
        self.client, self.config = client, config

    def spec(self, stream: str) -> Stream:
        """The stream's :class:`Stream`; the parties' key is ``party.key_field``."""
        if stream == "parties":
            return STREAMS[stream]._replace(key=self.config.party.key_field)
        return STREAMS[stream]

    def scan(self, stream: str, since: Cursor | None) -> list[tuple[Any, str | None, int]]:
        """``(change time, key, id)`` of every record changed at or after ``since``, sorted;
        the key is None for a record that has none (:meth:`read` rejects it)."""
        model, key, _, _, extra, ctx = self.spec(stream)
        domain: list[Any] = list(extra)
        moment = parse_cursor(since.value) if since is not None else None
        if moment is not None:
            domain.append(["OR", ("write_date", ">=", moment),
                           [("write_date", "=", None), ("create_date", ">=", moment)]])
        fields = ["create_date", "write_date"] + ([key] if key != "id" else [])
        found: list[tuple[Any, str | None, int]] = []
        last_id = 0
        while True:
            page = self.client.search_read(model, [*domain, ("id", ">", last_id)], fields,
                                           limit=SCAN_PAGE, order=[["id", "ASC"]], context=ctx)
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
        part: list[tuple[Any, str | None, int]] = []
        keyed = 0
        for item in self.scan(stream, since):
            part.append(item)
            keyed += item[1] is not None
            if keyed == size:
                yield self._batch(stream, part)
                part, keyed = [], 0
        if part:
            yield self._batch(stream, part)

    def _batch(self, stream: str, part: list[tuple[Any, str | None, int]]) -> Batch:
        model, key = self.spec(stream)[:2]
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
        spec = self.spec(stream)
        fields = [spec.key, *spec.fields] if spec.key != "id" else list(spec.fields)
        records = self.client.read(spec.model, ids, fields, context=spec.context)
        order = {rid: n for n, rid in enumerate(ids)}
        rows = spec.rows(self.client, records, spec.key)
        rows.sort(key=lambda row: order.get(row["id"], len(order)))
        return rows

    def lookup(self, stream: str, keys: Sequence[str]) -> Mapping[str, Row]:
        """``{key: row}`` of the records with ``keys`` (archived ones too where the stream
        reads them), as a read gives them."""
        spec = self.spec(stream)
        records = {r[spec.key]: r for r in search_in(self.client, spec.model, spec.key, keys,
                                                     [spec.key, *spec.fields], spec.context)}
        return {row[spec.key]: row
                for row in spec.rows(self.client, list(records.values()), spec.key)}

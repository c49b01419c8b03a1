"""Reading Odoo streams with ``search_read``, in ``(write_date, id)`` order.

``write_date`` is set by the ORM on every write, in UTC, to the second. A mass
update gives thousands of records the same ``write_date``, so ``offset``
paging over a changing table can skip or repeat rows. Pages are therefore
fetched by *keyset*: after a page ending at ``(w, i)`` the next one asks for::

    ['|', ('write_date', '>', w), '&', ('write_date', '=', w), ('id', '>', i)]

with ``order='write_date asc, id asc'`` and ``limit``. The batch cursor is
``(write_date as ISO-8601 UTC, id zero-padded to 10 digits)`` so cursors sort
correctly as text too; a read that resumes from one skips exactly the rows at
that instant it already has.

Values are normalised for mappings: Odoo's ``False`` for an empty field
becomes ``None`` (except on boolean fields), a many2one ``[id, "Name"]``
becomes the id plus ``<field>_name``, and configured one2many children
(order lines, invoice lines) are read and embedded as lists of dicts.

Odoo hard deletes are invisible to an API; archiving (``active = False``) is
what Odoo users do instead, and archived records come back as
``Batch.deleted_keys`` when the stream has ``archived_as_deleted`` (reads
use ``active_test: False`` so they are seen at all).
"""

from __future__ import annotations

__all__ = ["OdooReader", "iso_cursor", "normalize_record"]

from collections.abc import Iterator
from typing import Any

from crm2erp.connectors.base import Batch, Cursor, Row
from crm2erp.connectors.odoo.config import OdooConfig, OdooStreamConfig
from crm2erp.connectors.odoo.rpc import OdooRpc, odoo_datetime
from crm2erp.connectors.toolkit.batches import chunks
from crm2erp.connectors.toolkit.ordering import Item, merged_batches
from crm2erp.errors import FatalError

ORDER = "{cursor} asc, id asc"


def iso_cursor(odoo_value: str) -> str:
    """Odoo's ``2025-01-06 08:00:00`` as ``2025-01-06T08:00:00Z``."""
    return odoo_value.replace(" ", "T") + "Z"


def _key_text(record_id: int) -> str:
    return f"{int(record_id):010d}"


def normalize_record(record: dict[str, Any], types: dict[str, dict[str, Any]]) -> Row:
    """Odoo's wire values as plain ones (see the module docstring)."""
    out: Row = {}
    for name, value in record.items():
        kind = types.get(name, {}).get("type")
        if kind == "boolean" or name == "id":
            out[name] = value
        elif kind == "many2one":
            if isinstance(value, list) and value:
                out[name] = value[0]
                out[f"{name}_name"] = value[1] if len(value) > 1 else None
            else:
                out[name] = None if value is False else value
                out[f"{name}_name"] = None
        elif value is False:
            out[name] = [] if kind in ("one2many", "many2many") else None
        else:
            out[name] = value
    return out


class OdooReader:
    def __init__(self, rpc: OdooRpc, config: OdooConfig):
        self.rpc, self.config = rpc, config

    def read(self, stream: OdooStreamConfig, since: Cursor | None,
             batch_size: int) -> Iterator[Batch]:
        stamp = ""
        if since is not None:   # the positions' text form (toolkit merged_batches)
            stamp = iso_cursor(odoo_datetime(since.value))
            if since.key not in (None, ""):
                since = Cursor(since.value, _key_text(int(since.key)))
        yield from merged_batches([self._items(stream, since)], since, stamp, batch_size)

    def _items(self, stream: OdooStreamConfig, since: Cursor | None) -> Iterator[Item]:
        """The stream's records in ``(write_date, id)`` order, by keyset pages from ``since``;
        archived ones as deletions when the stream says so."""
        types = self.rpc.field_types(stream.model)
        cf = stream.cursor_field
        position: tuple[str, int] | None = None
        lower: list[Any] = []
        if since is not None:
            moment = odoo_datetime(since.value)
            if since.key not in (None, ""):
                position = (moment, int(since.key))
            else:
                lower = [[cf, ">=", moment]]
        context = {"active_test": False} if "active" in types else {}
        while True:
            keyset = ["|", [cf, ">", position[0]], "&", [cf, "=", position[0]],
                      ["id", ">", position[1]]] if position else lower
            page = self.rpc.execute_kw(stream.model, "search_read",
                                       [list(stream.domain) + keyset],
                                       {"fields": stream.fields, "limit": self.config.page_size,
                                        "order": ORDER.format(cursor=cf), "context": context})
            if not page:
                break
            self._expand_children(stream, page)
            for raw in page:
                if not raw.get(cf):
                    raise FatalError(f"Odoo {stream.model} record {raw.get('id')} has no "
                                     f"{cf}; choose a cursor_field that is always set")
                position = (raw[cf], int(raw["id"]))
                record = normalize_record(raw, types)
                at = (iso_cursor(raw[cf]), _key_text(raw["id"]))
                if stream.archived_as_deleted and record.get("active") is False:
                    yield at, None, str(record["id"])
                else:
                    yield at, record, None
            if len(page) < self.config.page_size:
                break

    def _expand_children(self, stream: OdooStreamConfig, page: list[dict[str, Any]]) -> None:
        """Replace the id lists of configured one2many fields by the child records."""
        for field, child in stream.children.items():
            ids = [i for rec in page for i in (rec.get(field) or [])]
            found: dict[int, Row] = {}
            types = self.rpc.field_types(child.model)
            fields = list(dict.fromkeys(["id", *child.fields]))
            for chunk in chunks(ids, 1000):
                for rec in self.rpc.execute_kw(child.model, "read", [list(chunk)],
                                               {"fields": fields}) or []:
                    found[int(rec["id"])] = normalize_record(rec, types)
            for rec in page:
                rec[field] = [found[i] for i in (rec.get(field) or []) if i in found]

    def lookup(self, stream: OdooStreamConfig, keys: list[str]) -> dict[str, Row]:
        """Current records by ``key_field`` value (archived ones included)."""
        if not stream.key_field:
            return {}
        types = self.rpc.field_types(stream.model)
        found: dict[str, Row] = {}
        for chunk in chunks(keys, 500):
            page = self.rpc.execute_kw(stream.model, "search_read",
                                       [[[stream.key_field, "in", list(chunk)]]],
                                       {"fields": stream.fields, "order": "id asc",
                                        "context": {"active_test": False}}) or []
            self._expand_children(stream, page)
            for raw in page:
                record = normalize_record(raw, types)
                found.setdefault(str(record[stream.key_field]), record)
        return found

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

from collections.abc import Iterator, Sequence
from typing import Any

from crm2erp.connectors.base import Batch, Cursor, Row
from crm2erp.connectors.odoo.config import OdooConfig, OdooStreamConfig
from crm2erp.connectors.odoo.rpc import OdooRpc, odoo_datetime
from crm2erp.connectors.toolkit.batches import chunks
from crm2erp.connectors.toolkit.ordering import Item, merged_batches
from crm2erp.connectors.toolkit.paging import keyset_records
from crm2erp.connectors.toolkit.targets import rows_by_key
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
        if kind == "many2one" and name != "id":   # [id, "Name"], False or a bare id
            pair = value if isinstance(value, list) and value else [
                None if value is False else value]
            out[name] = pair[0]
            out[f"{name}_name"] = pair[1] if len(pair) > 1 else None
        elif value is False and kind != "boolean" and name != "id":
            out[name] = [] if kind in ("one2many", "many2many") else None
        else:
            out[name] = value
    return out


class OdooReader:
    def __init__(self, rpc: OdooRpc, config: OdooConfig):
        self.rpc, self.config = rpc, config

    def read(self, stream: OdooStreamConfig, since: Cursor | None,
             batch_size: int) -> Iterator[Batch]:
        moment, stamp, after = None, "", None
        if since is not None:   # the positions' text form (toolkit merged_batches)
            moment = odoo_datetime(since.value)
            stamp = iso_cursor(moment)
            if since.key not in (None, ""):
                after = (moment, int(since.key))
                since = Cursor(since.value, _key_text(after[1]))
        yield from merged_batches([self._items(stream, moment, after)], since, stamp,
                                  batch_size)

    def _items(self, stream: OdooStreamConfig, moment: str | None,
               after: tuple[str, int] | None) -> Iterator[Item]:
        """The stream's records in ``(write_date, id)`` order, by keyset pages from ``after``
        (else from ``moment`` on); archived ones as deletions when the stream says so."""
        types = self.rpc.field_types(stream.model)
        cf = stream.cursor_field
        context = {"active_test": False} if "active" in types else {}
        lower = [[cf, ">=", moment]] if moment else []

        def page(after: tuple[str, int] | None) -> list[dict[str, Any]]:
            keyset = ["|", [cf, ">", after[0]], "&", [cf, "=", after[0]],
                      ["id", ">", after[1]]] if after else lower
            found = self.rpc.execute_kw(stream.model, "search_read",
                                        [list(stream.domain) + keyset],
                                        {"fields": stream.fields, "limit": self.config.page_size,
                                         "order": ORDER.format(cursor=cf), "context": context})
            if found:
                self._expand_children(stream, found)
            return found or []

        for raw in keyset_records(page, lambda found: (found[-1][cf], int(found[-1]["id"])),
                                  size=self.config.page_size, after=after):
            if not raw.get(cf):
                raise FatalError(f"Odoo {stream.model} record {raw.get('id')} has no "
                                 f"{cf}; choose a cursor_field that is always set")
            record = normalize_record(raw, types)
            at = (iso_cursor(raw[cf]), _key_text(raw["id"]))
            if stream.archived_as_deleted and record.get("active") is False:
                yield at, None, str(record["id"])
            else:
                yield at, record, None

    def _expand_children(self, stream: OdooStreamConfig, page: list[dict[str, Any]]) -> None:
        """Replace the id lists of configured one2many fields by the child records."""
        for field, child in stream.children.items():
            ids = [i for rec in page for i in (rec.get(field) or [])]
            types = self.rpc.field_types(child.model)
            fields = list(dict.fromkeys(["id", *child.fields]))
            found = {int(rec["id"]): normalize_record(rec, types) for part in chunks(ids, 1000)
                     for rec in self.rpc.execute_kw(child.model, "read", [list(part)],
                                                    {"fields": fields}) or []}
            for rec in page:
                rec[field] = [found[i] for i in (rec.get(field) or []) if i in found]

    def lookup(self, stream: OdooStreamConfig, keys: Sequence[Any]) -> dict[str, Row]:
        """Current records by ``key_field`` value (archived ones included)."""
        if not stream.key_field:
            return {}
        types = self.rpc.field_types(stream.model)

        def fetch(part: list[str]) -> Iterator[tuple[str, Row]]:
            page = self.rpc.records_by(stream.model, str(stream.key_field), part, stream.fields,
                                       order="id asc")
            self._expand_children(stream, list(page.values()))
            return ((key, normalize_record(raw, types)) for key, raw in page.items())

        return rows_by_key(keys, 500, fetch)

"""Row shapes: Tryton records to crm2erp rows and back.

The rows a mapping produces for the writable streams and the rows the
streams read share one shape per stream, documented in
``docs/connectors/tryton.md``. Values keep their types: ``Decimal`` for
money, ``date`` for dates, ISO-8601 text (UTC) for ``updated_at``.

A row field read straight from the record is a line of a field map (row
field -> Tryton field, ``party.code`` being the ``code`` of the ``party``
the record points at); the fields a stream reads follow from its map.
"""

from __future__ import annotations

__all__ = [
    "PARTY_FIELDS", "ADDRESS_FIELDS", "PRODUCT_FIELDS", "SALE_FIELDS", "SALE_STATE_FIELDS",
    "INVOICE_FIELDS", "CONTACT_SHORTCUTS", "address_vals", "wanted_addresses",
    "wanted_contacts", "party_row", "product_row", "sale_rows", "sale_state_rows",
    "invoice_rows", "iso_utc", "compact", "value_at",
]

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from crm2erp.connectors.tryton.common import cursor_value


def _same(*names: str) -> dict[str, str]:
    """Row fields named like the Tryton fields they hold."""
    return {name: name for name in names}


_AMOUNTS = _same("untaxed_amount", "tax_amount", "total_amount")
_STATES = _same("state", "invoice_state", "shipment_state")
#: row field -> Tryton field, after the key and ``id`` (see :func:`_mapped`)
PRODUCT_MAP = {"name": "name", "list_price": "template.list_price", "type": "template.type",
               "uom": "default_uom.name"}
SALE_MAP = {"number": "number", "party_id": "party", "party_code": "party.code",
            "sale_date": "sale_date", "currency": "currency.code",
            "description": "description", **_STATES, **_AMOUNTS}
SALE_STATE_MAP = {"number": "number", **_STATES}
SALE_LINE_MAP = {"product": "product.code", **_same("quantity", "unit_price", "amount",
                                                    "description"), "unit": "unit.name"}
INVOICE_MAP = {**_same("number", "reference", "type"), "party_id": "party",
               "party_code": "party.code", "party_name": "party.name",
               "invoice_date": "invoice_date", "currency": "currency.code", **_AMOUNTS,
               "amount_to_pay": "amount_to_pay", "state": "state"}
ADDRESS_TEXT = {"street": "street_unstructured", "postal_code": "postal_code", "city": "city"}
ADDRESS_MAP = {**ADDRESS_TEXT, "country": "country.code"}
_DATES = ("create_date", "write_date")

PARTY_FIELDS = ("name", "active", "addresses", "contact_mechanisms", *_DATES)
ADDRESS_FIELDS = ("street_unstructured", "postal_code", "city", "country", "country.code",
                  "invoice", "delivery", "active")
PRODUCT_FIELDS = ("name", "active", "template.list_price", "template.type", "default_uom.name",
                  *_DATES)
SALE_FIELDS = (*SALE_MAP.values(), "lines", *_DATES)
SALE_STATE_FIELDS = (*SALE_STATE_MAP.values(), *_DATES)
SALE_LINE_FIELDS = ("sale", "type", "product", *SALE_LINE_MAP.values())
INVOICE_FIELDS = (*INVOICE_MAP.values(), "sales", *_DATES)
CONTACT_SHORTCUTS = ("email", "phone", "mobile", "website", "fax")


def iso_utc(moment: dt.datetime | None) -> str | None:
    """Tryton's naive UTC timestamps as ISO-8601 with an explicit offset."""
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC).isoformat(timespec="microseconds")


def _updated_at(record: Mapping[str, Any]) -> str | None:
    return iso_utc(cursor_value(record)) if record.get("create_date") else None


def value_at(record: Mapping[str, Any], field: str) -> Any:
    """The value of ``field`` in a read record; ``party.code`` is in ``record["party."]``."""
    head, dot, rest = field.partition(".")
    if not dot:
        return record.get(field)
    return (record.get(head + ".") or {}).get(rest)


def _mapped(record: Mapping[str, Any], key: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """The key (unless it is ``id``), ``id``, then the ``fields`` map's values."""
    head = {} if key == "id" else {key: record.get(key)}
    return {**head, "id": record["id"],
            **{name: value_at(record, field) for name, field in fields.items()}}


def compact(value: str) -> str:
    """A contact value without spacing and punctuation, to compare ``+49 30 1`` with ``+49301``."""
    return re.sub(r"[\s\-()/.]", "", value).lower() if "@" not in value else value.lower()


def address_vals(addr: Mapping[str, Any], countries: Mapping[str, int]) -> dict[str, Any]:
    """The Tryton values of one address row; ValueError when its country is unknown."""
    vals: dict[str, Any] = {field: str(addr.get(name) or "").strip() or None
                            for name, field in ADDRESS_TEXT.items()}
    code = str(addr.get("country") or "").strip().upper()
    if code and code not in countries:
        raise ValueError(f"country {code!r} is not in Tryton (load it with "
                         "trytond_import_countries) or is not an ISO 3166 alpha-2 code")
    vals["country"] = countries[code] if code else None
    for flag in ("invoice", "delivery"):
        if addr.get(flag) is not None:
            vals[flag] = bool(addr[flag])
    return vals


def wanted_addresses(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``addresses`` plus the ``billing_address`` (invoice) and ``shipping_address``
    (delivery) shortcuts; the same place named twice becomes one address with both flags.
    When the row names a billing or shipping address, that flag is also set False on its
    other shortcut address, so the first invoice/delivery address is the one the row names."""
    found: dict[tuple, dict[str, Any]] = {}
    extra = [(row.get("billing_address"), "invoice"), (row.get("shipping_address"), "delivery")]
    roles: dict[tuple, set[str]] = {}
    for addr, flag in [(a, None) for a in row.get("addresses") or []] + extra:
        if not isinstance(addr, Mapping) or not any(
                addr.get(k) for k in ("street", "postal_code", "city", "country")):
            continue
        sig = tuple(str(addr.get(k) or "").strip().lower()
                    for k in ("street", "postal_code", "city", "country"))
        merged = found.setdefault(sig, dict(addr))
        if flag:
            merged[flag] = True
            roles.setdefault(sig, set()).add(flag)
    named = set().union(*roles.values()) if roles else set()
    for sig in roles:
        for flag in named:
            found[sig].setdefault(flag, False)
    return list(found.values())


def wanted_contacts(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(type, value)`` pairs from ``contact_mechanisms`` and the shortcut fields."""
    pairs = [(str(cm.get("type") or "other"), str(cm["value"]).strip())
             for cm in row.get("contact_mechanisms") or [] if cm.get("value")]
    pairs += [(kind, str(row[kind]).strip()) for kind in CONTACT_SHORTCUTS if row.get(kind)]
    unique: dict[tuple[str, str], tuple[str, str]] = {}
    for kind, value in pairs:   # the first of the values that compare equal
        unique.setdefault((kind, compact(value)), (kind, value))
    return list(unique.values())


def _address_row(addr: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if addr is None:
        return None
    return {name: value_at(addr, field) for name, field in ADDRESS_MAP.items()}


def party_row(party: Mapping[str, Any], addresses: Sequence[Mapping[str, Any]],
              contacts: Sequence[Mapping[str, Any]], key_field: str = "code",
              relations: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A party as a row; ``addresses`` and ``contacts`` are its active ones in Tryton's
    order, so ``phone``/``email``... and ``billing_address`` (the first address flagged
    invoice) / ``shipping_address`` (delivery) are what Tryton itself would use."""
    row: dict[str, Any] = {
        **_mapped(party, key_field, {"name": "name"}), "active": bool(party.get("active", True)),
        "addresses": [{**_address_row(a), "invoice": bool(a.get("invoice")),
                       "delivery": bool(a.get("delivery"))} for a in addresses],
        "billing_address": _address_row(next((a for a in addresses if a.get("invoice")), None)),
        "shipping_address": _address_row(next((a for a in addresses if a.get("delivery")),
                                               None)),
        "contact_mechanisms": [{"type": c["type"], "value": c["value"]} for c in contacts],
        "relation_to": str(relations[0]["to"]) if relations else None,
        "relation_type": value_at(relations[0], "type.name") if relations else None,
        "updated_at": _updated_at(party),
    }
    for kind in CONTACT_SHORTCUTS:
        row[kind] = next((c["value"] for c in contacts if c["type"] == kind), None)
    return row


def product_row(product: Mapping[str, Any]) -> dict[str, Any]:
    return {**_mapped(product, "code", PRODUCT_MAP), "active": bool(product.get("active", True)),
            "updated_at": _updated_at(product)}


def product_rows(client: Any, products: Sequence[Mapping[str, Any]], key: str) -> list[dict]:
    return [product_row(p) for p in products]


def sale_rows(client: Any, sales: Sequence[Mapping[str, Any]], key: str) -> list[dict]:
    """Rows of ``sales`` (read with SALE_FIELDS) with their lines, read in one call."""
    line_ids = [i for s in sales for i in s["lines"]]
    by_sale: dict[int, list] = {}
    for ln in client.read("sale.line", line_ids, SALE_LINE_FIELDS):
        if ln.get("type", "line") == "line":
            by_sale.setdefault(ln["sale"], []).append(
                {name: value_at(ln, field) for name, field in SALE_LINE_MAP.items()})
    return [{**_mapped(s, key, SALE_MAP), "lines": by_sale.get(s["id"], []),
             "updated_at": _updated_at(s)} for s in sales]


def sale_state_rows(client: Any, sales: Sequence[Mapping[str, Any]], key: str) -> list[dict]:
    return [{**_mapped(s, key, SALE_STATE_MAP), "updated_at": _updated_at(s)} for s in sales]


def invoice_rows(client: Any, invoices: Sequence[Mapping[str, Any]], key: str) -> list[dict]:
    """Rows of ``invoices`` (read with INVOICE_FIELDS) with the references of their sales,
    read in one call."""
    sale_ids = sorted({s for inv in invoices for s in inv.get("sales") or []})
    refs = {s["id"]: s["reference"] for s in client.read("sale.sale", sale_ids, ["reference"])}
    rows = []
    for inv in invoices:
        mine = sorted(r for r in (refs.get(s) for s in inv.get("sales") or []) if r)
        rows.append({**_mapped(inv, "id", INVOICE_MAP), "sale_reference": mine[0] if mine
                     else None, "sale_references": mine, "updated_at": _updated_at(inv)})
    return rows

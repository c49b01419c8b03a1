"""Row shapes: Tryton records to crm2erp rows and back.

The rows a mapping produces for the writable streams and the rows the
streams read share one shape per stream, documented in
``docs/connectors/tryton.md``. Values keep their types: ``Decimal`` for
money, ``date`` for dates, ISO-8601 text (UTC) for ``updated_at``.
"""

from __future__ import annotations

__all__ = [
    "PARTY_FIELDS", "ADDRESS_FIELDS", "PRODUCT_FIELDS", "SALE_FIELDS", "SALE_LINE_FIELDS",
    "INVOICE_FIELDS", "CONTACT_SHORTCUTS", "address_vals", "contact_vals", "wanted_addresses",
    "wanted_contacts",
    "party_row", "product_row", "sale_row", "sale_rows", "invoice_row", "iso_utc", "compact",
]

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from crm2erp.connectors.tryton.common import cursor_value

PARTY_FIELDS = ("name", "active", "addresses", "contact_mechanisms", "create_date", "write_date")
ADDRESS_FIELDS = ("street_unstructured", "postal_code", "city", "country", "country.code",
                  "invoice", "delivery", "active")
PRODUCT_FIELDS = ("name", "active", "template.list_price", "template.type", "default_uom.name",
                  "create_date", "write_date")
SALE_FIELDS = ("reference", "number", "party", "party.code", "sale_date", "currency.code",
               "description", "state", "invoice_state", "shipment_state", "untaxed_amount",
               "tax_amount", "total_amount", "lines", "create_date", "write_date")
SALE_LINE_FIELDS = ("sale", "type", "product", "product.code", "quantity", "unit_price", "amount",
                    "description", "unit.name")
INVOICE_FIELDS = ("number", "reference", "type", "party", "party.code", "party.name",
                  "invoice_date", "currency.code", "untaxed_amount", "tax_amount",
                  "total_amount", "amount_to_pay", "state", "sales", "create_date", "write_date")
CONTACT_SHORTCUTS = ("email", "phone", "mobile", "website", "fax")


def iso_utc(moment: dt.datetime | None) -> str | None:
    """Tryton's naive UTC timestamps as ISO-8601 with an explicit offset."""
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC).isoformat(timespec="microseconds")


def compact(value: str) -> str:
    """A contact value without spacing and punctuation, to compare ``+49 30 1`` with ``+49301``."""
    return re.sub(r"[\s\-()/.]", "", value).lower() if "@" not in value else value.lower()


def address_vals(addr: Mapping[str, Any], countries: Mapping[str, int]) -> dict[str, Any]:
    """The Tryton values of one address row; ValueError when its country is unknown."""
    vals: dict[str, Any] = {
        "street_unstructured": (str(addr.get("street") or "").strip() or None),
        "postal_code": (str(addr.get("postal_code") or "").strip() or None),
        "city": (str(addr.get("city") or "").strip() or None),
    }
    code = str(addr.get("country") or "").strip().upper()
    if code:
        if code not in countries:
            raise ValueError(f"country {code!r} is not in Tryton (load it with "
                             "trytond_import_countries) or is not an ISO 3166 alpha-2 code")
        vals["country"] = countries[code]
    else:
        vals["country"] = None
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
    pairs: list[tuple[str, str]] = []
    for cm in row.get("contact_mechanisms") or []:
        if cm.get("value"):
            pairs.append((str(cm.get("type") or "other"), str(cm["value"]).strip()))
    for kind in CONTACT_SHORTCUTS:
        if row.get(kind):
            pairs.append((kind, str(row[kind]).strip()))
    seen, unique = set(), []
    for kind, value in pairs:
        if (kind, compact(value)) not in seen:
            seen.add((kind, compact(value)))
            unique.append((kind, value))
    return unique


def contact_vals(pair: tuple[str, str]) -> dict[str, str]:
    return {"type": pair[0], "value": pair[1]}


def _address_row(addr: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if addr is None:
        return None
    return {"street": addr.get("street_unstructured"), "postal_code": addr.get("postal_code"),
            "city": addr.get("city"), "country": (addr.get("country.") or {}).get("code")}


def party_row(party: Mapping[str, Any], addresses: Sequence[Mapping[str, Any]],
              contacts: Sequence[Mapping[str, Any]], key_field: str = "code",
              relations: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A party as a row; ``addresses`` and ``contacts`` are its active ones in Tryton's
    order, so ``phone``/``email``... and ``billing_address`` (the first address flagged
    invoice) / ``shipping_address`` (delivery) are what Tryton itself would use."""
    row: dict[str, Any] = {
        key_field: party.get(key_field), "id": party["id"], "name": party.get("name"),
        "active": bool(party.get("active", True)),
        "addresses": [{**_address_row(a), "invoice": bool(a.get("invoice")),
                       "delivery": bool(a.get("delivery"))} for a in addresses],
        "billing_address": _address_row(next((a for a in addresses if a.get("invoice")), None)),
        "shipping_address": _address_row(next((a for a in addresses if a.get("delivery")),
                                               None)),
        "contact_mechanisms": [{"type": c["type"], "value": c["value"]} for c in contacts],
        "relation_to": str(relations[0]["to"]) if relations else None,
        "relation_type": (relations[0].get("type.") or {}).get("name") if relations else None,
        "updated_at": iso_utc(cursor_value(party)) if party.get("create_date") else None,
    }
    for kind in CONTACT_SHORTCUTS:
        row[kind] = next((c["value"] for c in contacts if c["type"] == kind), None)
    return row


def product_row(product: Mapping[str, Any]) -> dict[str, Any]:
    template = product.get("template.") or {}
    return {
        "code": product.get("code"), "id": product["id"], "name": product.get("name"),
        "list_price": template.get("list_price"), "type": template.get("type"),
        "uom": (product.get("default_uom.") or {}).get("name"),
        "active": bool(product.get("active", True)),
        "updated_at": iso_utc(cursor_value(product)) if product.get("create_date") else None,
    }


def sale_row(sale: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "reference": sale.get("reference"), "id": sale["id"], "number": sale.get("number"),
        "party_id": sale.get("party"), "party_code": (sale.get("party.") or {}).get("code"),
        "sale_date": sale.get("sale_date"),
        "currency": (sale.get("currency.") or {}).get("code"),
        "description": sale.get("description"), "state": sale.get("state"),
        "invoice_state": sale.get("invoice_state"), "shipment_state": sale.get("shipment_state"),
        "untaxed_amount": sale.get("untaxed_amount"), "tax_amount": sale.get("tax_amount"),
        "total_amount": sale.get("total_amount"),
        "lines": [{"product": (ln.get("product.") or {}).get("code"),
                   "quantity": ln.get("quantity"), "unit_price": ln.get("unit_price"),
                   "amount": ln.get("amount"), "description": ln.get("description"),
                   "unit": (ln.get("unit.") or {}).get("name")}
                  for ln in lines if ln.get("type", "line") == "line"],
        "updated_at": iso_utc(cursor_value(sale)),
    }


def sale_rows(client: Any, sales: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of ``sales`` (read with SALE_FIELDS) with their lines, read in one call."""
    line_ids = [i for s in sales for i in s["lines"]]
    lines = client.model("sale.line", "read", line_ids, list(SALE_LINE_FIELDS)) \
        if line_ids else []
    by_sale: dict[int, list] = {}
    for ln in lines:
        by_sale.setdefault(ln["sale"], []).append(ln)
    return [sale_row(s, by_sale.get(s["id"], [])) for s in sales]


def invoice_row(inv: Mapping[str, Any], sale_refs: Mapping[int, str | None]) -> dict[str, Any]:
    refs = [sale_refs.get(s) for s in inv.get("sales") or []]
    refs = sorted(r for r in refs if r)
    return {
        "id": inv["id"], "number": inv.get("number"), "reference": inv.get("reference"),
        "type": inv.get("type"), "party_id": inv.get("party"),
        "party_code": (inv.get("party.") or {}).get("code"),
        "party_name": (inv.get("party.") or {}).get("name"),
        "invoice_date": inv.get("invoice_date"),
        "currency": (inv.get("currency.") or {}).get("code"),
        "untaxed_amount": inv.get("untaxed_amount"), "tax_amount": inv.get("tax_amount"),
        "total_amount": inv.get("total_amount"), "amount_to_pay": inv.get("amount_to_pay"),
        "state": inv.get("state"),
        "sale_reference": refs[0] if refs else None, "sale_references": refs,
        "updated_at": iso_utc(cursor_value(inv)),
    }

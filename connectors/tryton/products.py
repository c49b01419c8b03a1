"""Write side for ``products``: written through their templates.

A product row is one ``product.product`` and its ``product.template`` (name,
price, type, units, account category): new products are created as a
template with one variant whose ``suffix_code`` is the row's code, changes
are written to the template, and every result names the product's id.
"""

from __future__ import annotations

__all__ = ["ProductWriter"]

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from crm2erp.connectors.base import Row, WriteAction, WriteResult
from crm2erp.connectors.tryton.common import known
from crm2erp.connectors.tryton.rows import PRODUCT_FIELDS, product_row
from crm2erp.connectors.tryton.writer import KeyedWriter

#: template field -> how a row's value that is not None is sent
_TEMPLATE: dict[str, Callable[[Any], Any]] = {
    "name": lambda value: str(value).strip(), "list_price": lambda value: Decimal(str(value)),
    "active": bool}


class ProductWriter(KeyedWriter):
    """Upserts ``products``."""

    stream, model, written = "products", "product.product", "product.template"
    what, written_id, fields = "product", "template.id", PRODUCT_FIELDS

    def values(self, row: Row, key: str, current: dict | None) -> dict[str, Any]:
        tvals = self._template_vals(row, creating=current is None)
        if current is None:
            tvals.setdefault("type", self.config.product_defaults.type)
            tvals["products"] = [["create", [{"suffix_code": key}]]]
            return tvals
        before = product_row(current)
        return {k: v for k, v in tvals.items() if _differs(before, k, v)}

    def found(self, keys: list[str]) -> dict[str, int]:
        return {key: rec["template"] for key, rec in self.existing(keys, ["template"]).items()}

    def _template_vals(self, row: Row, *, creating: bool) -> dict[str, Any]:
        if creating and row.get("name") is None:
            raise ValueError("a new product needs a name")
        vals = {field: convert(row[field]) for field, convert in _TEMPLATE.items()
                if row.get(field) is not None}
        if row.get("type"):
            vals["type"] = row["type"]
        if creating:
            vals.setdefault("list_price", Decimal(0))
            defaults = self.config.product_defaults
            uom_name = row.get("uom") or defaults.uom
            uom = known(self.lookups.uom(uom_name),
                        f"unit of measure {uom_name!r} is not in Tryton")
            vals.update(default_uom=uom, sale_uom=uom, salable=True)
            category = row.get("category") or defaults.category
            if category:
                vals["account_category"] = known(
                    self.lookups.one("product.category", "name", category),
                    f"product category {category!r} is not in Tryton; create it or fix "
                    "product_defaults.category")
        return vals

    def finish(self, results: list[WriteResult]) -> list[WriteResult]:
        """The results with the product ids (creates and writes answered template ids)."""
        done = (WriteAction.CREATED, WriteAction.UPDATED)
        keys = [r.key for r in results if r.action in done]
        found = self.existing(keys, []) if keys else {}
        return [WriteResult(r.key, r.action, str(found[r.key]["id"]))
                if r.action in done and r.key in found else r for r in results]


def _differs(before: dict, key: str, value: Any) -> bool:
    old = before.get(key)
    if isinstance(value, Decimal) and old is not None:
        return Decimal(str(old)) != value
    return old != value

"""The emulator's Odoo data model: the models, their fields and default values.

A subset of Odoo 17's fields of the models the connector reads and writes,
with their types as ``fields_get`` reports them, the required ones, the
selection values and which fields are computed (read-only).
"""

from __future__ import annotations

__all__ = ["MODELS", "DEFAULTS", "STAMP_FIELDS"]

from typing import Any


def _f(kind: str, relation: str | None = None, *, required: bool = False,
       selection: tuple = (), computed: bool = False) -> dict[str, Any]:
    return {"type": kind, "relation": relation, "required": required,
            "selection": selection, "computed": computed}


STAMP_FIELDS = {"id": _f("integer", computed=True), "write_date": _f("datetime", computed=True),
           "create_date": _f("datetime", computed=True),
           "display_name": _f("char", computed=True)}
MODELS: dict[str, dict[str, dict[str, Any]]] = {
    "res.country": {"name": _f("char", required=True), "code": _f("char")},
    "res.currency": {"name": _f("char", required=True)},
    "res.users": {"name": _f("char", required=True), "login": _f("char")},
    "uom.uom": {"name": _f("char", required=True)},
    "res.partner": {
        "name": _f("char"), "is_company": _f("boolean"), "type": _f(
            "selection", selection=("contact", "invoice", "delivery", "other")),
        "parent_id": _f("many2one", "res.partner"), "ref": _f("char"), "vat": _f("char"),
        "email": _f("char"), "phone": _f("char"), "mobile": _f("char"),
        "street": _f("char"), "street2": _f("char"), "zip": _f("char"), "city": _f("char"),
        "country_id": _f("many2one", "res.country"),
        "country_code": _f("char", computed=True), "website": _f("char"),
        "function": _f("char"), "customer_rank": _f("integer"),
        "supplier_rank": _f("integer"),
        "lang": _f("selection", selection=("en_US", "de_DE", "fr_FR", "nl_NL")),
        "comment": _f("html"), "active": _f("boolean"),
        "child_ids": _f("one2many", "res.partner")},
    "crm.stage": {"name": _f("char", required=True), "sequence": _f("integer"),
                  "is_won": _f("boolean")},
    "crm.lead": {
        "name": _f("char", required=True),
        "type": _f("selection", selection=("lead", "opportunity")),
        "partner_id": _f("many2one", "res.partner"), "stage_id": _f("many2one", "crm.stage"),
        "probability": _f("float"), "expected_revenue": _f("monetary"),
        "currency_id": _f("many2one", "res.currency"), "date_deadline": _f("date"),
        "won_status": _f("selection", selection=("won", "lost", "pending"), computed=True),
        "user_id": _f("many2one", "res.users"), "active": _f("boolean")},
    "product.product": {
        "name": _f("char", required=True), "default_code": _f("char"),
        "list_price": _f("float"), "currency_id": _f("many2one", "res.currency"),
        "type": _f("selection", selection=("consu", "service", "product")),
        "description_sale": _f("text"), "uom_id": _f("many2one", "uom.uom"),
        "active": _f("boolean")},
    "sale.order": {
        "name": _f("char"), "origin": _f("char"), "client_order_ref": _f("char"),
        "partner_id": _f("many2one", "res.partner", required=True),
        "date_order": _f("datetime"), "currency_id": _f("many2one", "res.currency"),
        "state": _f("selection", selection=("draft", "sent", "sale", "done", "cancel")),
        "amount_untaxed": _f("monetary", computed=True),
        "amount_tax": _f("monetary", computed=True),
        "amount_total": _f("monetary", computed=True),
        "order_line": _f("one2many", "sale.order.line")},
    "sale.order.line": {
        "order_id": _f("many2one", "sale.order"), "sequence": _f("integer"),
        "product_id": _f("many2one", "product.product", required=True),
        "name": _f("text"), "product_uom_qty": _f("float"), "price_unit": _f("float"),
        "discount": _f("float"), "price_subtotal": _f("monetary", computed=True)},
    "account.move": {
        "name": _f("char"), "move_type": _f("selection", selection=(
            "entry", "out_invoice", "out_refund", "in_invoice", "in_refund")),
        "partner_id": _f("many2one", "res.partner"), "invoice_date": _f("date"),
        "invoice_date_due": _f("date"), "invoice_origin": _f("char"),
        "state": _f("selection", selection=("draft", "posted", "cancel")),
        "payment_state": _f("selection", selection=(
            "not_paid", "in_payment", "paid", "partial", "reversed")),
        "currency_id": _f("many2one", "res.currency"),
        "amount_untaxed": _f("monetary"), "amount_tax": _f("monetary"),
        "amount_total": _f("monetary"), "amount_residual": _f("monetary"),
        "invoice_line_ids": _f("one2many", "account.move.line")},
    "account.move.line": {
        "move_id": _f("many2one", "account.move"), "sequence": _f("integer"),
        "product_id": _f("many2one", "product.product"), "name": _f("text"),
        "quantity": _f("float"), "price_unit": _f("float"),
        "price_subtotal": _f("monetary", computed=True)},
}
DEFAULTS = {"res.partner": {"active": True, "type": "contact", "customer_rank": 0},
             "crm.lead": {"active": True, "type": "opportunity", "probability": 10.0},
             "product.product": {"active": True, "type": "consu"},
             "sale.order": {"state": "draft"},
             "sale.order.line": {"product_uom_qty": 1.0, "discount": 0.0},
             "account.move": {"state": "draft", "payment_state": "not_paid",
                              "move_type": "entry"}}

"""Odoo connection settings (what users write in ``connections.yaml``).

Example::

    type: odoo
    url: https://mycompany.odoo.com
    database: mycompany
    username: integration@mycompany.com
    password: ${ODOO_API_KEY}          # an API key (Preferences > Account Security)
    page_size: 500
    rate_limit: {requests_per_second: 5, burst: 10}
    streams:                            # optional: the defaults below are used otherwise
      customers: {model: res.partner, key_field: ref, domain: [[is_company, "=", true]],
                  fields: [name, ref, email, phone, vat]}

One connection can serve the CRM side (``companies``, ``persons``,
``opportunities``, ``products``) and the ERP side (``customers``,
``sale_orders``, ``invoices``) of the same database; each flow names the
stream it reads or writes.
"""

from __future__ import annotations

__all__ = ["OdooConfig", "OdooStreamConfig", "ChildConfig", "ReferenceConfig",
           "DEFAULT_STREAMS"]

import re
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, model_validator

from crm2erp.connectors.toolkit.config import (
    ChildList,
    StrictModel,
    name_type,
    selected_names,
    web_url,
)
from crm2erp.connectors.toolkit.streams import NamedStreamsConfig, default_streams

OdooUrl = web_url("https://mycompany.odoo.com")

_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")
_MODEL = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z0-9_]+)*$")
ModelName = name_type(_MODEL, "an Odoo model name (like res.partner)")


class ReferenceConfig(StrictModel):
    """Resolve a code to a many2one id on write: ``country_code: DE`` -> ``country_id: 57``.

    The row's field (the key of ``references``) is removed and ``field`` is set
    to the id of the ``model`` record whose ``by`` field equals the value. A
    code that matches nothing makes that one record fail with a clear message.
    """

    field: str
    model: ModelName
    by: str = "name"


class ChildConfig(StrictModel):
    """A one2many field read as a list of dicts and written with x2many commands."""

    model: ModelName
    fields: list[str]
    references: dict[str, ReferenceConfig] = Field(default_factory=dict)


class OdooStreamConfig(ChildConfig):
    """One stream: a model, a domain filter, the fields read, the upsert key."""

    domain: list[Any] = Field(default_factory=list)
    key_field: str | None = Field(None, description="field upserts match on (ref, origin...); "
                                  "None makes the stream read-only")
    cursor_field: str = "write_date"
    archived_as_deleted: bool = Field(
        True, description="archived records (active=False) come back as deletions; "
        "False reads them as rows (crm.lead: lost opportunities are archived)")
    children: Annotated[dict[str, ChildConfig], ChildList] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict,
                                     description="values added to every created record")
    confirm: bool = Field(False, description="call action_confirm on written draft records "
                          "(sale.order)")
    child_partners: dict[str, Literal["contact", "invoice", "delivery", "other"]] = Field(
        default_factory=dict, description="res.partner streams: row field -> child partner "
        "type (invoice_address: invoice); each is written to the integration's child "
        "partner of that type")

    @model_validator(mode="after")
    def _fields(self) -> OdooStreamConfig:
        needed = ["id", self.cursor_field, self.key_field, *self.children]
        if self.archived_as_deleted or "active" in self.fields:
            needed.append("active")
        self.fields = selected_names(self.fields, needed, _FIELD, lambda bad: (
            f"fields {bad} are not Odoo field names (lower case, digits, _)"))
        if self.child_partners and (self.model != "res.partner" or not self.key_field):
            raise ValueError("child_partners needs model res.partner and a key_field")
        return self


#: the partner streams' model, fields, upsert key and country code
_PARTNER = {"model": "res.partner", "key_field": "ref",
            "fields": ["name", "is_company", "parent_id", "ref", "vat", "email", "phone",
                       "mobile", "street", "street2", "zip", "city", "country_code", "website",
                       "function", "customer_rank", "lang", "comment"],
            "references": {"country_code": {"field": "country_id", "model": "res.country",
                                            "by": "code"}}}
_COMPANY = [["is_company", "=", True]]
DEFAULT_STREAMS: dict[str, dict[str, Any]] = {
    # CRM side -------------------------------------------------------------
    "companies": {**_PARTNER, "domain": _COMPANY},
    "persons": {**_PARTNER, "domain": [["is_company", "=", False], ["parent_id", "!=", False],
                                       ["type", "=", "contact"]]},
    "opportunities": {"model": "crm.lead", "archived_as_deleted": False,
                      "domain": [["type", "=", "opportunity"]],
                      "fields": ["name", "partner_id", "stage_id", "probability",
                                 "expected_revenue", "currency_id", "date_deadline",
                                 "won_status", "user_id", "active"]},
    "products": {"model": "product.product", "key_field": "default_code",
                 "fields": ["name", "default_code", "list_price", "currency_id", "type",
                            "description_sale", "uom_id", "active"]},
    # ERP side -------------------------------------------------------------
    "customers": {**_PARTNER, "domain": _COMPANY,
                  "defaults": {"is_company": True, "customer_rank": 1},
                  "child_partners": {"invoice_address": "invoice",
                                     "delivery_address": "delivery"}},
    "sale_orders": {"model": "sale.order", "key_field": "origin", "confirm": True,
                    "archived_as_deleted": False,
                    "fields": ["name", "origin", "client_order_ref", "partner_id",
                               "date_order", "state", "currency_id", "amount_untaxed",
                               "amount_total", "order_line"],
                    "children": {"order_line": {
                        "model": "sale.order.line",
                        "fields": ["sequence", "product_id", "name", "product_uom_qty",
                                   "price_unit", "discount", "price_subtotal"],
                        "references": {"product_code": {"field": "product_id",
                                                        "model": "product.product",
                                                        "by": "default_code"}}}}},
    "invoices": {"model": "account.move", "archived_as_deleted": False,
                 "domain": [["move_type", "=", "out_invoice"]],
                 "fields": ["name", "move_type", "partner_id", "invoice_date",
                            "invoice_date_due", "invoice_origin", "state", "payment_state",
                            "currency_id", "amount_untaxed", "amount_tax", "amount_total",
                            "amount_residual", "invoice_line_ids"],
                 "children": {"invoice_line_ids": {
                     "model": "account.move.line",
                     "fields": ["sequence", "product_id", "name", "quantity", "price_unit",
                                "price_subtotal"]}}},
}


class OdooConfig(NamedStreamsConfig):
    """Settings of one Odoo database connection (JSON-RPC on ``/jsonrpc``).

    ``auth`` (from the HTTP base) stays ``none`` for Odoo itself: Odoo's
    credentials travel inside every JSON-RPC call. It can still carry a
    reverse proxy's basic auth.
    """

    type: Literal["odoo"] | None = None
    url: OdooUrl
    database: str = Field(min_length=1)
    username: str = Field(min_length=1)
    password: SecretStr = Field(description="the user's password or, better, an API key")
    page_size: int = Field(500, ge=1, le=10_000)
    write_batch_size: int = Field(100, ge=1, le=1000)
    context: dict[str, Any] = Field(default_factory=dict,
                                    description="extra context for every call (lang, tz...)")
    streams: dict[str, OdooStreamConfig] = Field(
        default_factory=default_streams(OdooStreamConfig, DEFAULT_STREAMS))

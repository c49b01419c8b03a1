"""ERPNext / Frappe connection settings (what users write in ``connections.yaml``).

Example::

    type: erpnext
    base_url: https://erp.example.com
    auth: {type: api_key, header: Authorization, prefix: "token ",
           key: "${ERPNEXT_API_KEY}:${ERPNEXT_API_SECRET}"}
    time_zone: Europe/Berlin
    page_size: 100

``auth`` may also be given as ``{type: frappe_token, api_key: ..., api_secret: ...}``.
Leaving ``streams`` out gives the three standard streams below; a stream given
by a default name only overrides the keys it sets.
"""

from __future__ import annotations

__all__ = ["ErpNextStreamConfig", "ErpNextConfig", "DEFAULT_STREAMS"]

import re
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from crm2erp.connectors.base import TimeZoneName
from crm2erp.connectors.toolkit.config import StrictModel, name_type, retired_setting, web_url
from crm2erp.connectors.toolkit.streams import default_streams, over_defaults
from crm2erp.http.config import HttpConnectionConfig

ErpnextUrl = web_url("https://erp.example.com")

_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")
FieldName = name_type(_FIELD, "a Frappe fieldname (lower case, digits, _)")


class ErpNextStreamConfig(StrictModel):
    """One stream: a DocType, the fields to read and the field writes match on."""

    doctype: str
    fields: list[str] = Field(default_factory=lambda: ["*"])
    cursor_field: FieldName = "modified"
    external_id_field: FieldName | None = Field(None, description=(
        "A unique (custom) field holding the CRM-side id, e.g. custom_crm_id; "
        "empty makes the stream read-only."))
    children: list[str] = Field(default_factory=list, description=(
        "Child table fields (e.g. items): rows are read as whole documents."))
    submit: bool = Field(False, description="Submit new documents (docstatus 1).")
    filters: list[list[Any]] = Field(default_factory=list)
    track_deletes: bool = True
    archive_field: FieldName | None = Field(None, description=(
        "A Check field delete_policy: archive sets to 1 (Customer: disabled); empty: the "
        "stream can only delete."))
    contact: FieldName | None = Field(None, description=(
        "Row field holding the values of the integration's Contact (email_id, phone, "
        "mobile_no, first_name...), written to a Contact linked to the record."))
    addresses: dict[str, str] = Field(default_factory=dict, description=(
        "Row field -> Address type (billing_address: Billing): each is written to an "
        "Address of that type linked to the record."))


DEFAULT_STREAMS: dict[str, dict[str, Any]] = {
    "customers": {"doctype": "Customer", "external_id_field": "custom_crm_id",
                  "archive_field": "disabled", "contact": "contact",
                  "addresses": {"billing_address": "Billing", "shipping_address": "Shipping"}},
    "sales_orders": {"doctype": "Sales Order", "external_id_field": "custom_crm_id",
                     "children": ["items"], "submit": True},
    "sales_invoices": {"doctype": "Sales Invoice", "children": ["items"],
                       "filters": [["docstatus", "!=", 0]]},
}


class FrappeTokenAuthConfig(StrictModel):
    """Frappe's own token auth: ``Authorization: token <api_key>:<api_secret>``."""

    type: Literal["frappe_token"]
    api_key: str
    api_secret: SecretStr


class ErpNextConfig(HttpConnectionConfig):
    """Settings of one ERPNext site."""

    type: Literal["erpnext"] | None = None
    base_url: ErpnextUrl
    time_zone: TimeZoneName = Field("UTC", description="The site's time zone (System Settings): "
                           "Frappe timestamps carry none.")
    page_size: int = Field(100, ge=1, le=1000)
    streams: dict[str, ErpNextStreamConfig] = Field(
        default_factory=default_streams(ErpNextStreamConfig, DEFAULT_STREAMS))

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        retired_setting(data, "write_attempts", "write_attempts is no longer a setting: every "
                        "write request is retried with the connection's retry settings "
                        "(retry.max_attempts); remove it", refuse=True)
        auth = data.get("auth")
        if isinstance(auth, dict) and auth.get("type") == "frappe_token":
            token = FrappeTokenAuthConfig.model_validate(auth)
            data = {**data, "auth": {
                "type": "api_key", "header": "Authorization", "prefix": "token ",
                "key": f"{token.api_key}:{token.api_secret.get_secret_value()}"}}
        return over_defaults(data, DEFAULT_STREAMS)


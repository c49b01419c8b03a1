"""HubSpot connection settings (what users write in ``connections.yaml``).

Example::

    type: hubspot
    auth: {type: bearer, token: ${HUBSPOT_PRIVATE_APP_TOKEN}}
    rate_limit: {requests_per_second: 10, burst: 10}
    streams:
      companies: {properties: [name, domain, phone, city, country], id_property: erp_id}

Auth is a private app access token (``auth: {type: bearer, ...}``). Leaving
``streams`` out gives the five standard streams below; giving a stream
replaces that stream's defaults.

``children`` embeds associated records of another stream into each row: the
ids come from the v4 associations batch read, the records from
``batch/read`` (100 per call) with the child stream's properties::

    deals:
      object_type: deals
      properties: [dealname, dealstage, amount, closedate]
      associations: [companies]
      children: {lines: {stream: line_items}}   # a deal's line items, under `lines`

A list of stream names (``children: [line_items]``) embeds each under its
own stream name.
"""

from __future__ import annotations

__all__ = ["ChildConfig", "HubSpotStreamConfig", "HubSpotConfig", "DEFAULT_STREAMS",
           "RECORD_FIELDS", "RESERVED_FIELDS"]

import re
from typing import Literal

from pydantic import Field, model_validator

from crm2erp.connectors.toolkit.config import ChildConfig, name_type, selected_names, web_url
from crm2erp.connectors.toolkit.streams import ApiConnectionConfig, ApiStreamConfig

HubspotUrl = web_url("https://api.hubapi.com")

_NAME = re.compile(r"^[a-z0-9_]+$")
InternalName = name_type(_NAME, "a HubSpot internal name (lower case, digits, _)")
#: what a record has besides its properties; a read row has them beside its properties
RECORD_FIELDS = ("id", "createdAt", "updatedAt", "archived")
#: keys of a read row that are not HubSpot properties (never sent back on writes)
RESERVED_FIELDS = frozenset({*RECORD_FIELDS, "archivedAt", "associations"})


class HubSpotStreamConfig(ApiStreamConfig[ChildConfig]):
    """One stream: a CRM object type, the properties to read, the unique property for writes."""

    object_type: InternalName
    properties: list[str]
    cursor_property: InternalName = "hs_lastmodifieddate"
    id_property: InternalName | None = Field(
        None, description="A property with unique values (hasUniqueValue) to upsert on.")
    associations: list[str] = Field(
        default_factory=list, description="Object types whose associated ids are read "
        "(v4 associations batch read) into row['associations'][type].")

    @model_validator(mode="after")
    def _needed(self) -> HubSpotStreamConfig:
        self.properties = selected_names(
            self.properties, ("hs_object_id", self.cursor_property, self.id_property), _NAME,
            lambda bad: f"properties {bad} are not HubSpot internal property names (use the "
            "internal name, not the label)")
        return self


_ADDRESS = ["address", "city", "zip", "country"]
DEFAULT_STREAMS: dict[str, dict] = {
    "companies": {"object_type": "companies", "id_property": "erp_id",
                  "properties": ["name", "domain", "phone", "industry", *_ADDRESS,
                                 "annualrevenue", "numberofemployees", "erp_id"]},
    "contacts": {"object_type": "contacts", "id_property": "email",
                 "cursor_property": "lastmodifieddate", "associations": ["companies"],
                 "properties": ["firstname", "lastname", "email", "phone", "jobtitle",
                                "associatedcompanyid"]},
    "deals": {"object_type": "deals", "id_property": "erp_id",
              "associations": ["companies", "line_items"],
              "children": {"lines": {"stream": "line_items"}},
              "properties": ["dealname", "dealstage", "pipeline", "amount", "closedate",
                             "deal_currency_code", "hs_deal_stage_probability", "erp_id"]},
    "line_items": {"object_type": "line_items", "associations": ["deals"],
                   "properties": ["name", "hs_product_id", "hs_sku", "quantity", "price",
                                  "amount", "discount"]},
    "products": {"object_type": "products", "id_property": "erp_id",
                 "properties": ["name", "hs_sku", "description", "price",
                                "hs_recurring_billing_period", "erp_id"]},
}


class HubSpotConfig(ApiConnectionConfig):
    """Settings of one HubSpot portal connection."""

    type: Literal["hubspot"] | None = None
    base_url: HubspotUrl = "https://api.hubapi.com"
    page_size: int = Field(200, ge=1, le=200, description="Search page size (max 200).")
    list_page_size: int = Field(100, ge=1, le=100)
    search_cap: int = Field(10_000, ge=1, description="HubSpot serves at most this many "
                            "results per search; longer reads restart from the last timestamp.")
    search_requests_per_second: float | None = Field(
        4.0, gt=0, description="Client-side limit for search calls (HubSpot allows 4/s "
        "per portal, below the general burst limit); null turns it off.")
    full_read: Literal["search", "list"] = Field(
        "search", description="'list' reads full refreshes through the list endpoint "
        "(id order, watermark set at the end) instead of search.")
    write_batch_size: int = Field(100, ge=1, le=100)
    streams: dict[str, HubSpotStreamConfig] = Field(
        default_factory=HubSpotStreamConfig.defaults(DEFAULT_STREAMS))

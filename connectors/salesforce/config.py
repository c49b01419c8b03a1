"""Salesforce connection settings (what users write in ``connections.yaml``).

Example::

    type: salesforce
    instance_url: https://example.my.salesforce.com
    api_version: "61.0"
    auth: {type: client_credentials, client_id: ${SF_CLIENT_ID},
           client_secret: ${SF_CLIENT_SECRET}}
    page_size: 2000
    rate_limit: {requests_per_second: 20, burst: 40}
    streams:
      accounts: {sobject: Account, fields: [Id, Name, Phone, SystemModstamp],
                 external_id_field: ERP_Id__c}

Leaving ``streams`` out gives the five standard streams below.

``children`` embeds the rows of other streams into each parent row, read
with one ``WHERE <foreign_key> IN (...)`` query per batch (chunked), in Id
order::

    opportunities:
      sobject: Opportunity
      fields: [Id, AccountId, Name, StageName, Amount, CloseDate]
      children:
        lines: {stream: opportunity_line_items}   # foreign key OpportunityId

A list of stream names (``children: [opportunity_line_items]``) embeds each
under its own stream name. The foreign key defaults to ``<parent sObject>Id``
(``OpportunityId``), the name of standard lookups; custom lookups say it.
"""

from __future__ import annotations

__all__ = ["ArchiveConfig", "ChildConfig", "StreamConfig", "SalesforceConfig", "DEFAULT_STREAMS"]

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from crm2erp.connectors.toolkit.config import StrictModel, name_type, selected_names, web_url
from crm2erp.connectors.toolkit.streams import (
    ApiConnectionConfig,
    ApiStreamConfig,
    KeyedChildConfig,
)

SalesforceUrl = web_url("https://yourdomain.my.salesforce.com")

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
ApiName = name_type(_NAME, "a Salesforce API name (letters, digits, _)")


class ChildConfig(KeyedChildConfig):
    """Rows of ``stream`` embedded into their parent, found by ``foreign_key``."""

    foreign_key: ApiName | None = Field(
        None, description="Field of the child holding the parent's Id; default "
        "<parent sObject>Id (OpportunityId).")


class ArchiveConfig(StrictModel):
    """How ``delete(mode=archive)`` marks a record: sets ``field`` to ``value`` by Id."""

    field: ApiName
    value: Any


class StreamConfig(ApiStreamConfig[ChildConfig]):
    """One stream: an sObject, the fields to select, and the external id used for writes."""

    sobject: ApiName
    fields: list[str]
    external_id_field: ApiName | None = None
    cursor_field: ApiName = "SystemModstamp"
    archive: ArchiveConfig | None = Field(
        None, description="delete_policy archive: the field to set, e.g. "
        "{field: Active__c, value: false}")

    @model_validator(mode="after")
    def _required_fields(self) -> StreamConfig:
        self.fields = selected_names(
            self.fields, ("Id", self.cursor_field, self.external_id_field), _NAME,
            lambda bad: f"fields {bad} are not Salesforce API names; relationship paths "
            "(Account.Name) are not supported, select the Id field instead")
        return self


#: Id, the cursor field (SystemModstamp) and the external id are added by StreamConfig
DEFAULT_STREAMS: dict[str, dict] = {
    "accounts": {"sobject": "Account", "external_id_field": "ERP_Id__c",
                 "fields": ["Id", "Name", "Phone", "Website", "Industry", "BillingStreet",
                            "BillingCity", "BillingPostalCode", "BillingCountry",
                            "AnnualRevenue", "NumberOfEmployees"]},
    "contacts": {"sobject": "Contact", "external_id_field": "ERP_Id__c",
                 "fields": ["Id", "AccountId", "FirstName", "LastName", "Email", "Phone", "Title"]},
    "opportunities": {"sobject": "Opportunity", "external_id_field": "ERP_Id__c",
                      "children": {"lines": {"stream": "opportunity_line_items"}},
                      "fields": ["Id", "AccountId", "Name", "StageName", "Amount", "CloseDate",
                                 "Probability"]},
    "opportunity_line_items": {"sobject": "OpportunityLineItem",
                               "fields": ["Id", "OpportunityId", "Product2Id", "ProductCode",
                                          "Name", "Description", "Quantity", "UnitPrice",
                                          "TotalPrice"]},
    "products": {"sobject": "Product2", "external_id_field": "ERP_Id__c",
                 "fields": ["Id", "Name", "ProductCode", "Family", "IsActive"]},
}


class SalesforceConfig(ApiConnectionConfig):
    """Settings of one Salesforce org connection."""

    child_key = "{sobject}Id"   # a child's field holding the parent Id: OpportunityId

    type: Literal["salesforce"] | None = None
    instance_url: SalesforceUrl
    api_version: str = Field("61.0", pattern=r"^\d{2,3}\.0$")
    login_url: str = "https://login.salesforce.com"   # JWT audience; test.salesforce.com
    page_size: int = Field(2000, ge=200, le=2000)
    mode: Literal["rest", "bulk"] = "rest"
    bulk_threshold: int | None = Field(None, ge=1)
    bulk_max_records: int = Field(50_000, ge=1)
    bulk_poll_interval: float = Field(2.0, ge=0)
    bulk_timeout: float = Field(3600.0, gt=0)
    write_batch_size: int = Field(200, ge=1, le=200)
    all_or_none: bool = False
    streams: dict[str, StreamConfig] = Field(
        default_factory=StreamConfig.defaults(DEFAULT_STREAMS))

    @property
    def api_path(self) -> str:
        return f"/services/data/v{self.api_version}"

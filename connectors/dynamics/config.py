"""Dynamics 365 / Dataverse connection settings (what users write in ``connections.yaml``).

Example::

    type: dynamics
    environment_url: https://contoso.crm4.dynamics.com
    tenant_id: 00000000-0000-0000-0000-000000000000
    auth: {type: client_credentials, client_id: ${D365_CLIENT_ID},
           client_secret: ${D365_CLIENT_SECRET}}
    streams:
      accounts: {entity_set: accounts, key: accountid, alternate_key: [accountnumber],
                 fields: [accountid, name, accountnumber, modifiedon]}

The token comes from Microsoft Entra ID (Azure AD) with the client
credentials grant; ``token_url`` defaults to
``{authority_url}/{tenant_id}/oauth2/v2.0/token`` and ``scope`` to
``{environment_url}/.default``. Leaving ``streams`` out gives the five
standard streams below.

``children`` embeds rows of another stream whose lookup points at the
parent, read with one ``$filter=<foreign key> eq <id> or ...`` query per 50
parents; ``expand`` inlines single-valued lookups of a stream's rows
(``$expand=productid($select=productnumber)``)::

    opportunities:
      children: {lines: {stream: opportunityproducts}}   # _opportunityid_value
    opportunityproducts:
      expand: {productid: [productnumber, name]}   # row["productid"]["productnumber"]

A list of stream names (``children: [opportunityproducts]``) embeds each
under its own stream name; the foreign key defaults to
``_<parent logical name>id_value``.
"""

from __future__ import annotations

__all__ = ["ChildConfig", "DynamicsStreamConfig", "DynamicsConfig", "DEFAULT_STREAMS"]

import re
from typing import Literal

from pydantic import Field, model_validator

from crm2erp.connectors.toolkit.config import name_type, selected_names, web_url
from crm2erp.connectors.toolkit.streams import (
    ApiConnectionConfig,
    ApiStreamConfig,
    KeyedChildConfig,
)
from crm2erp.http.config import ClientCredentialsAuthConfig

DynamicsUrl = web_url("https://yourorg.crm.dynamics.com")

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
LogicalName = name_type(_NAME, "a Dataverse logical name (lower case, digits, _)")


#: rows of ``stream`` whose ``foreign_key`` lookup column (``_opportunityid_value``)
#: holds the parent's id
ChildConfig = KeyedChildConfig


class DynamicsStreamConfig(ApiStreamConfig[ChildConfig]):
    """One stream: an entity set, the columns to select, and the alternate key for writes."""

    entity_set: LogicalName
    logical_name: LogicalName = Field(
        description="The table's logical name (audit objecttypecode).")
    key: LogicalName = Field(description="The primary id column, e.g. accountid.")
    fields: list[str]
    cursor_field: LogicalName = "modifiedon"
    alternate_key: list[str] = Field(
        default_factory=list, description="Columns of an alternate key defined on the table; "
        "writes upsert with PATCH entity_set(col='value').")
    archive: dict[str, int] = Field(
        default_factory=lambda: {"statecode": 1, "statuscode": 2},
        description="delete_policy archive: the state and status a row is set to "
        "(deactivated: statecode 1, statuscode 2 for accounts and contacts)")
    expand: dict[str, list[str]] = Field(
        default_factory=dict, description="Single-valued navigation property -> columns of "
        "the related row to inline under that name ($expand).")

    @model_validator(mode="after")
    def _needed(self) -> DynamicsStreamConfig:
        self.fields = selected_names(
            self.fields, (self.key, self.cursor_field, *self.alternate_key), _NAME,
            lambda bad: f"columns {bad} are not Dataverse logical names; lookups are read "
            "as _name_value",
            also=[*self.alternate_key, *self.expand, *(c for cols in self.expand.values()
                                                       for c in cols)])
        return self


_EXT = "crm2erp_externalid"
DEFAULT_STREAMS: dict[str, dict] = {
    "accounts": {"entity_set": "accounts", "logical_name": "account", "key": "accountid",
                 "alternate_key": ["accountnumber"],
                 "fields": ["name", "accountnumber", "telephone1", "emailaddress1", "websiteurl",
                            "address1_line1", "address1_city", "address1_postalcode",
                            "address1_country", "revenue", "numberofemployees", "statecode"]},
    "contacts": {"entity_set": "contacts", "logical_name": "contact", "key": "contactid",
                 "alternate_key": [_EXT],
                 "fields": ["firstname", "lastname", "emailaddress1", "telephone1",
                            "mobilephone", "jobtitle", "_parentcustomerid_value"]},
    "opportunities": {"entity_set": "opportunities", "logical_name": "opportunity",
                      "key": "opportunityid", "alternate_key": [_EXT],
                      "children": {"lines": {"stream": "opportunityproducts"}},
                      "fields": ["name", "_parentaccountid_value", "estimatedvalue",
                                 "estimatedclosedate", "closeprobability", "stepname",
                                 "statecode", "statuscode"]},
    "opportunityproducts": {"entity_set": "opportunityproducts",
                            "logical_name": "opportunityproduct",
                            "key": "opportunityproductid",
                            "expand": {"productid": ["productnumber", "name"]},
                            "fields": ["_opportunityid_value", "_productid_value",
                                       "productdescription", "quantity", "priceperunit",
                                       "extendedamount"]},
    "products": {"entity_set": "products", "logical_name": "product", "key": "productid",
                 "alternate_key": ["productnumber"],
                 "fields": ["name", "productnumber", "description", "price", "statecode"]},
}


class DynamicsConfig(ApiConnectionConfig):
    """Settings of one Dataverse environment connection."""

    child_key = "_{logical_name}id_value"   # a child's lookup column: _opportunityid_value

    type: Literal["dynamics"] | None = None
    environment_url: DynamicsUrl
    api_version: str = Field("9.2", pattern=r"^9\.\d$")
    tenant_id: str | None = None
    authority_url: DynamicsUrl = "https://login.microsoftonline.com"
    page_size: int = Field(5000, ge=1, le=5000, description="Prefer: odata.maxpagesize")
    quota_wait_threshold: float = Field(
        3600.0, gt=0, description="A 429 asking to wait at least this long (seconds) means "
        "the request entitlement is used up: the run stops instead of waiting.")
    streams: dict[str, DynamicsStreamConfig] = Field(
        default_factory=DynamicsStreamConfig.defaults(DEFAULT_STREAMS))

    @model_validator(mode="after")
    def _token_url_known(self) -> DynamicsConfig:
        if isinstance(self.auth, ClientCredentialsAuthConfig) and not self.auth.token_url \
                and not self.tenant_id:
            raise ValueError("give tenant_id (the Entra ID directory id) or auth.token_url "
                             "for the client credentials grant")
        return self

    @property
    def api_path(self) -> str:
        return f"/api/data/v{self.api_version}"

    @property
    def token_url(self) -> str:
        return f"{self.authority_url}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def scope(self) -> str:
        return f"{self.environment_url}/.default"

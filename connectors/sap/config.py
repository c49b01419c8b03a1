"""SAP S/4HANA connection settings (what users write in ``connections.yaml``).

Example::

    type: sap
    base_url: https://my-s4.example.com
    sap_client: "100"
    auth: {type: basic, username: CRM2ERP_COMM_USER, password: ${SAP_PASSWORD}}
    write_batch_size: 50
    streams:
      business_partners:
        create_defaults: {BusinessPartnerGrouping: BP02}

Leaving ``streams`` out gives the four standard streams below; a stream given
by name only overrides the keys it sets. Every stream is one OData v2 entity
set: ``service`` and ``entity_set`` locate it, ``key`` names its key
properties, ``cursor_field`` (an ``Edm.DateTimeOffset``, or an ``Edm.DateTime``
date with ``cursor_time_field`` holding the ``Edm.Time``) drives incremental
reads, and ``external_id`` names the properties writes match on.
"""

from __future__ import annotations

__all__ = ["SapStreamConfig", "SapConfig", "DEFAULT_STREAMS"]

import logging
import re
from typing import Any, Literal

from pydantic import Field, model_validator

from crm2erp.connectors.toolkit.config import StrictModel, name_type, retired_setting, web_url
from crm2erp.connectors.toolkit.streams import default_streams, over_defaults
from crm2erp.http.config import HttpConnectionConfig

SapUrl = web_url("https://my-s4.example.com")

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ODataName = name_type(_NAME, "an OData property or entity set name")


class SapStreamConfig(StrictModel):
    """One stream: an OData v2 entity set and how to read and write it."""

    service: str = Field(description="OData service name, e.g. API_BUSINESS_PARTNER.")
    entity_set: ODataName
    key: list[str] = Field(min_length=1)
    cursor_field: ODataName
    cursor_time_field: ODataName | None = None
    created_date_field: str | None = Field(None, description=(
        "For split date/time cursors: the creation date read when the change date is "
        "empty (S/4 leaves LastChangeDate empty until the first change)."))
    created_time_field: str | None = None
    deleted_flag: ODataName | None = Field(None, description=(
        "Boolean property that marks a record as deleted (archived); such records "
        "become Batch.deleted_keys on incremental reads."))
    select: list[str] = Field(default_factory=list)
    expand: list[str] = Field(default_factory=list)
    children: dict[str, Literal["one", "many"]] = Field(
        default_factory=dict, description="Navigation properties written by deep insert.")
    external_id: list[str] = Field(default_factory=list, description=(
        "Properties writes match on; empty makes the stream read-only."))
    target_id_field: str | None = None
    create_defaults: dict[str, Any] = Field(default_factory=dict)
    filter: str | None = Field(None, description="Extra $filter ANDed to every read.")
    deletes: dict[Literal["archive", "delete"], dict[str, Any] | None] = Field(
        default_factory=dict, description=(
            "How the engine's delete policy is carried out, per mode: properties MERGEd "
            "onto the record (e.g. archive: {BusinessPartnerIsBlocked: true}), or null "
            "for an HTTP DELETE. A mode not listed is refused."))

    @property
    def writable(self) -> bool:
        return bool(self.external_id)

    @property
    def id_field(self) -> str:
        return self.target_id_field or self.key[0]


_BP = {
    "service": "API_BUSINESS_PARTNER", "entity_set": "A_BusinessPartner",
    "key": ["BusinessPartner"], "cursor_field": "LastChangeDate",
    "cursor_time_field": "LastChangeTime", "created_date_field": "CreationDate",
    "created_time_field": "CreationTime", "deleted_flag": "IsMarkedForArchiving",
    "expand": ["to_BusinessPartnerAddress", "to_BusinessPartnerAddress/to_PhoneNumber",
               "to_BusinessPartnerAddress/to_EmailAddress", "to_BusinessPartnerRole",
               "to_Customer"],
    "children": {"to_BusinessPartnerAddress": "many", "to_BusinessPartnerRole": "many",
                 "to_Customer": "one"},
    "external_id": ["BusinessPartnerIDByExtSystem"],
    "create_defaults": {"BusinessPartnerCategory": "2", "BusinessPartnerGrouping": "BP02",
                        "to_BusinessPartnerRole": [{"BusinessPartnerRole": "FLCU00"},
                                                   {"BusinessPartnerRole": "FLCU01"}]},
    # SAP's API does not delete business partners: archive = central block,
    # delete = marked for archiving (data archiving then removes the partner)
    "deletes": {"archive": {"BusinessPartnerIsBlocked": True},
                "delete": {"IsMarkedForArchiving": True}},
}
DEFAULT_STREAMS: dict[str, dict[str, Any]] = {
    "business_partners": _BP,
    "sales_orders": {
        "service": "API_SALES_ORDER_SRV", "entity_set": "A_SalesOrder", "key": ["SalesOrder"],
        "cursor_field": "LastChangeDateTime", "expand": ["to_Item"],
        "children": {"to_Item": "many"}, "external_id": ["PurchaseOrderByCustomer"],
        "create_defaults": {"SalesOrderType": "OR", "SalesOrganization": "1010",
                            "DistributionChannel": "10", "OrganizationDivision": "00"},
        "deletes": {"delete": None},
    },
    "billing_documents": {
        "service": "API_BILLING_DOCUMENT_SRV", "entity_set": "A_BillingDocument",
        "key": ["BillingDocument"], "cursor_field": "LastChangeDateTime", "expand": ["to_Item"],
    },
    "planned_independent_requirements": {
        "service": "API_PLND_INDEP_RQMT_SRV", "entity_set": "PlannedIndepRqmt",
        "key": ["Product", "Plant", "MRPArea", "PlndIndepRqmtType", "PlndIndepRqmtVersion",
                "RequirementPlan", "RequirementSegment"],
        "cursor_field": "PlndIndepRqmtLastChgdDateTime", "expand": ["to_PlndIndepRqmtItem"],
        "children": {"to_PlndIndepRqmtItem": "many"},
        "external_id": ["Product", "Plant", "MRPArea", "PlndIndepRqmtType",
                        "PlndIndepRqmtVersion", "RequirementPlan", "RequirementSegment"],
        "target_id_field": "PlndIndepRqmtInternalID",
        "deletes": {"delete": None},
    },
}


class SapConfig(HttpConnectionConfig):
    """Settings of one SAP S/4HANA system (OData v2 APIs)."""

    type: Literal["sap"] | None = None
    base_url: SapUrl = Field(description="Scheme and host, e.g. https://my-s4.example.com:44300")
    service_root: str = "/sap/opu/odata/sap"
    sap_client: str | None = Field(None, pattern=r"^\d{3}$")
    language: str | None = Field(None, description="sap-language, e.g. EN")
    write_batch_size: int = Field(50, ge=1, le=1000, description="Records per $batch request.")
    lookup_chunk: int = Field(40, ge=1, le=200)
    streams: dict[str, SapStreamConfig] = Field(
        default_factory=default_streams(SapStreamConfig, DEFAULT_STREAMS))

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        """A stream named like a default one only overrides the keys it sets."""
        data = retired_setting(data, "write_attempts", "SAP connection: write_attempts is "
                               "deprecated and ignored; a $batch whose answer was lost is "
                               "retried per record under retry.max_attempts (with the "
                               "connection's backoff) - remove write_attempts",
                               refuse=False, logger=log)
        return over_defaults(data, DEFAULT_STREAMS)

    def service_path(self, service: str) -> str:
        return f"{self.service_root.rstrip('/')}/{service}"

"""SAP S/4HANA error classes, one test per row of the table in docs/connectors/sap.md.

Bodies follow SAP Gateway's OData v2 error format, ``{"error": {"code",
"message": {"lang", "value"}, "innererror": {"transactionid", "errordetails":
[{"code", "message", "propertyref", "severity"}]}}}``, and warnings come in the
``sap-message`` header of a successful answer as JSON ``{"code", "message",
"severity", "target", "details": [...]}`` (SAP Gateway, "Map Message Container
to Message Protocol Format").
"""

from __future__ import annotations

import json
import logging

import pytest

from crm2erp.connectors.sap import SapConnector
from crm2erp.emulators.sap.app import make_app
from crm2erp.errors import ConfigError, FatalError

from .test_sap_conformance import sap_config

SALES_ORDERS = "/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder"


@pytest.fixture
def sap(serve):
    return serve(make_app(seed=5, business_partners=10, sales_orders=3, billing_documents=2,
                          requirements=0))


def test_unknown_entity_set_on_read_is_a_configuration_error_shown_as_text(sap):
    conn = SapConnector(sap_config(sap.base_url, streams={
        "sales_orders": {"entity_set": "A_SalesOrdr"}}))
    with pytest.raises(ConfigError) as info:
        list(conn.read("sales_orders"))
    text = str(info.value)
    assert "HTTP 404 /IWBEP/CM_MGW_RT/025: Resource not found for segment" in text
    assert "A_SalesOrdr" in text and '{"error"' not in text


def test_unknown_property_on_read_is_a_configuration_error_shown_as_text(sap):
    conn = SapConnector(sap_config(sap.base_url, streams={
        "sales_orders": {"select": ["SalesOrder", "LastChangeDateTime", "Colour"]}}))
    with pytest.raises(ConfigError, match=r"HTTP 400 /IWBEP/CM_MGW_RT/\d+: .*Colour") as info:
        list(conn.read("sales_orders"))
    assert '"value"' not in str(info.value)


def test_other_refused_reads_are_fatal_with_sap_text_and_details(sap):
    conn = SapConnector(sap_config(sap.base_url))
    sap.reply_next(403, {"error": {
        "code": "/IWBEP/CM_MGW_RT/002", "message": {"lang": "en", "value": "No authorization "
                                                    "to read sales orders"},
        "innererror": {"transactionid": "4FE1D144B9AD22F2E10000000A420C41", "errordetails": [
            {"code": "V1/045", "message": "No authorization for sales organization 1010",
             "propertyref": "", "severity": "error"}]}}}, on="A_SalesOrder")
    with pytest.raises(FatalError) as info:
        list(conn.read("sales_orders"))
    text = str(info.value)
    assert "HTTP 403 /IWBEP/CM_MGW_RT/002: No authorization to read sales orders" in text
    assert "V1/045: No authorization for sales organization 1010" in text
    assert '{"error"' not in text


def test_sap_message_warnings_are_logged_and_kept(sap, caplog):
    conn = SapConnector(sap_config(sap.base_url))
    warning = {"code": "V1/555", "message": "Sales order 12 is incomplete", "severity":
               "warning", "target": "", "details": [
                   {"code": "V1/556", "message": "Pricing date is in the past",
                    "target": "PricingDate", "severity": "warning"},
                   {"code": "V1/001", "message": "Read 0 orders", "target": "",
                    "severity": "info"}]}
    sap.reply_next(200, {"d": {"results": []}}, {"sap-message": json.dumps(warning)},
                   on="A_SalesOrder")
    with caplog.at_level(logging.INFO, logger="crm2erp.connectors.sap"):
        list(conn.read("sales_orders"))
    assert conn.warnings == ["warning: V1/555: Sales order 12 is incomplete",
                             "warning: V1/556: Pricing date is in the past "
                             "(field PricingDate)"]
    logged = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().split(": ", 1)[1] for r in logged] == [
        "V1/555: Sales order 12 is incomplete",
        "V1/556: Pricing date is in the past (field PricingDate)"]


def test_check_lists_every_service_and_entity_set_at_fault(sap):
    conn = SapConnector(sap_config(sap.base_url, streams={
        "a": {"service": "API_SALES_ORDR_SRV", "entity_set": "A_SalesOrder",
              "key": ["SalesOrder"], "cursor_field": "LastChangeDateTime"},
        "b": {"service": "API_SALES_ORDER_SRV", "entity_set": "A_SalesOrdr",
              "key": ["SalesOrder"], "cursor_field": "LastChangeDateTime"}}))
    with pytest.raises(ConfigError) as info:
        conn.check()
    text = str(info.value)
    assert "API_SALES_ORDR_SRV" in text and "/IWFND/MED/170" in text
    assert "stream 'b'" in text and "A_SalesOrdr" in text

"""ERPNext / Frappe error classes, one test per row of the table in docs/connectors/erpnext.md.

Frappe answers a refused call with the HTTP status of the exception and
``{"exception": "frappe.exceptions.X: ...", "exc_type": "X", "exc": "[traceback]",
"_server_messages": "[\\"{\\\\\\"message\\\\\\": ...}\\"]"}`` (a JSON string of
JSON strings). ``frappe.throw(_("Field not permitted in query") + ": x",
frappe.DataError)`` is a 417; an unknown DocType a 404 ``DoesNotExistError``.
"""

from __future__ import annotations

import json

import pytest

from crm2erp.connectors.erpnext import ErpNextConnector
from crm2erp.emulators.erpnext.app import make_app
from crm2erp.errors import ConfigError

from .test_erpnext_conformance import erp_config


def frappe_body(exc_type, message, module="frappe.exceptions"):
    return {"exception": f"{module}.{exc_type}: {message}", "exc_type": exc_type,
            "exc": json.dumps([f"Traceback (most recent call last):\n  ...\n{exc_type}: "
                               f"{message}\n"]),
            "_server_messages": json.dumps([json.dumps({
                "message": message, "title": "Message", "indicator": "red",
                "raise_exception": 1, "__frappe_exc_id": "5f3c2a1b9d8e7f60"})])}


@pytest.fixture
def site(serve):
    app = make_app(seed=3, customers=6, sales_invoices=2)
    return serve(app)


def test_unknown_doctype_on_read_is_a_configuration_error_naming_it(site):
    with ErpNextConnector(erp_config(site.base_url, streams={
            "customers": {"doctype": "Custmer"}})) as conn:
        with pytest.raises(ConfigError, match="DocType Custmer not found"):
            list(conn.read("customers"))


def test_unknown_doctype_on_write_is_a_configuration_error_naming_it(site):
    with ErpNextConnector(erp_config(site.base_url, streams={
            "customers": {"doctype": "Custmer", "external_id_field": "custom_crm_id"}})) as conn:
        with pytest.raises(ConfigError, match="DocType Custmer not found"):
            conn.upsert("customers", site.sample_rows("customers", 1))


def test_field_not_permitted_in_query_is_a_configuration_error(site):
    with ErpNextConnector(erp_config(site.base_url)) as conn:
        site.reply_next(417, frappe_body("DataError", "Field not permitted in query: colour"),
                        on="GET /api/resource/Customer")
        with pytest.raises(ConfigError, match="DataError: Field not permitted in query: colour"):
            list(conn.read("customers"))


def test_unknown_column_is_a_configuration_error_not_retried(site):
    with ErpNextConnector(erp_config(site.base_url)) as conn:
        site.reply_next(500, frappe_body(
            "OperationalError", "(1054, \"Unknown column 'tabCustomer.colour' in 'where "
            "clause'\")", module="pymysql.err"), on="GET /api/resource/Customer")
        with pytest.raises(ConfigError, match="Unknown column 'tabCustomer.colour'"):
            list(conn.read("customers"))
        assert conn.client.stats.retries == 0


def test_a_refused_document_fails_alone(site):
    with ErpNextConnector(erp_config(site.base_url)) as conn:
        rows = site.sample_rows("customers", 3)
        rows[1]["customer_group"] = "No Such Group"
        results = conn.upsert("customers", rows)
        assert [r.ok for r in results] == [True, False, True]
        assert results[1].error.startswith("HTTP 417 LinkValidationError")
        stored = conn.lookup("customers", [r["custom_crm_id"] for r in rows])  # read back
    assert stored[rows[0]["custom_crm_id"]]["customer_name"] == rows[0]["customer_name"]
    assert rows[1]["custom_crm_id"] not in stored


def test_check_lists_every_doctype_at_fault(site):
    with ErpNextConnector(erp_config(site.base_url, streams={
            "a": {"doctype": "Custmer"}, "b": {"doctype": "Sales Ordr"},
            "c": {"doctype": "Customer"}})) as conn:
        with pytest.raises(ConfigError) as info:
            conn.check()
    text = str(info.value)
    assert "Custmer" in text and "Sales Ordr" in text and "stream 'c'" not in text

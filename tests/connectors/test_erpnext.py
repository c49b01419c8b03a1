"""ERPNext connector protocol details and mapping pack, against the loopback emulator."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import requests

from crm2erp.connectors.base import Cursor, WriteAction
from crm2erp.connectors.erpnext import ErpNextConfig, ErpNextConnector
from crm2erp.connectors.erpnext.api import frappe_error, to_cursor, to_frappe
from crm2erp.emulators.erpnext.app import API_KEY, API_SECRET, make_app
from crm2erp.errors import FatalError
from crm2erp.mapping import DictResolver, compile_mapping, load_mapping
from crm2erp.mappings import pack_dir
from crm2erp.schemas import entity_model
from crm2erp.testing.conformance import read_all

from .test_erpnext_conformance import erp_config


@pytest.fixture
def emulator(serve):
    app = make_app(seed=5, customers=25, sales_invoices=6)
    return serve(app)


@pytest.fixture
def connector(emulator):
    with ErpNextConnector(erp_config(emulator.base_url, page_size=10)) as conn:
        yield conn


def test_frappe_error_body_becomes_one_line():
    messages = json.dumps([json.dumps({"message": "Could not find <b>Customer</b>: X",
                                       "indicator": "red"})])
    body = json.dumps({"exc_type": "LinkValidationError", "exception": "frappe...",
                       "_server_messages": messages}).encode()
    assert frappe_error(417, body) == "HTTP 417 LinkValidationError: Could not find Customer: X"
    assert frappe_error(502, b"Bad Gateway") == "HTTP 502: Bad Gateway"


def test_site_time_zone_is_applied_to_cursors():
    assert to_cursor("2024-07-01 10:00:00.5", "Europe/Berlin") == "2024-07-01T08:00:00.500000Z"
    assert to_frappe("2024-07-01T08:00:00.500000Z", "Europe/Berlin") == \
        "2024-07-01 10:00:00.500000"
    with pytest.raises(ValueError, match="time zone"):
        ErpNextConfig.model_validate({"base_url": "https://x.example", "time_zone": "Mars/X"})


def test_token_auth_header_and_refusal(emulator):
    url = f"{emulator.base_url}/api/resource/Customer"
    refused = requests.get(url, headers={"Authorization": "token EMU_KEY:nope"})
    assert refused.status_code == 401 and refused.json()["exc_type"] == "AuthenticationError"
    ok = requests.get(url, params={"fields": '["name","custom_crm_id"]', "limit_page_length": 3},
                      headers={"Authorization": f"token {API_KEY}:{API_SECRET}"})
    assert len(ok.json()["data"]) == 3 and set(ok.json()["data"][0]) == {"name",
                                                                         "custom_crm_id"}


def test_incremental_read_uses_modified_with_name_tie_break(connector, emulator):
    batches = read_all(connector, "customers", batch_size=4)
    assert sum(len(b.rows) for b in batches) == 25
    mid = batches[1].cursor
    rest = [r["name"] for b in read_all(connector, "customers", mid) for r in b.rows]
    everything = [r["name"] for b in batches for r in b.rows]
    assert rest == everything[8:]


def test_customer_create_update_unchanged(connector, emulator):
    row = emulator.sample_rows("customers", 1)[0]
    created = connector.upsert("customers", [row])[0]
    assert created.action is WriteAction.CREATED and created.target_id == row["customer_name"]
    row["tax_id"] = "DE999999999"
    assert connector.upsert("customers", [row])[0].action is WriteAction.UPDATED
    assert emulator.get("customers", created.target_id)["tax_id"] == "DE999999999"
    assert connector.upsert("customers", [row])[0].action is WriteAction.UNCHANGED


def test_sales_order_is_submitted_with_items(connector, emulator):
    rows = emulator.sample_rows("sales_orders", 1)
    rows[0]["items"].append({"item_code": "TG12", "qty": Decimal("3"), "rate": Decimal("5.00")})
    [result] = connector.upsert("sales_orders", rows)
    assert result.action is WriteAction.CREATED and result.target_id.startswith("SAL-ORD-")
    order = emulator.get("sales_orders", result.target_id)
    assert order["docstatus"] == 1 and [i["item_code"] for i in order["items"]] == [
        "TG11", "TG12"]
    assert order["net_total"] == pytest.approx(54.8)
    assert connector.upsert("sales_orders", rows)[0].action is WriteAction.UNCHANGED
    rows[0]["items"][0]["qty"] = 7
    changed = connector.upsert("sales_orders", rows)[0]
    assert not changed.ok and "submitted" in changed.error and "amend" in changed.error


def test_frappe_refusals_are_record_failures(connector, emulator):
    bad_item = emulator.sample_rows("sales_orders", 1)[0]
    bad_item["items"][0]["item_code"] = "NOPE"
    no_customer = emulator.sample_rows("sales_orders", 1)[0]
    no_customer["customer"] = "Ghost Ltd"
    results = connector.upsert("sales_orders", [bad_item, no_customer])
    assert "LinkValidationError" in results[0].error and "Item: NOPE" in results[0].error
    assert "Could not find Customer: Ghost Ltd" in results[1].error


def test_lost_create_answer_does_not_duplicate(connector, emulator):
    rows = emulator.sample_rows("customers", 2)
    emulator.fail_next("truncate", on="POST /api/resource/Customer")
    results = connector.upsert("customers", rows)
    assert emulator.faults_pending == 0
    assert [r.action for r in results] == [WriteAction.CREATED] * 2
    for row in rows:
        assert len(emulator.find("customers", custom_crm_id=row["custom_crm_id"])) == 1


def test_sales_invoices_are_read_whole_and_read_only(connector, emulator):
    rows = [r for b in read_all(connector, "sales_invoices") for r in b.rows]
    assert len(rows) == 6 and rows[0]["items"][0]["item_code"] == "TG11"
    with pytest.raises(NotImplementedError):
        connector.upsert("sales_invoices", [{}])


def test_used_up_site_quota_is_fatal(connector, emulator):
    emulator.exhaust_limit()
    with pytest.raises(FatalError, match="quota"):
        read_all(connector, "customers")


# -- mapping pack -------------------------------------------------------------------

def _compiled(name: str):
    return compile_mapping(load_mapping(pack_dir("erpnext") / name), system="erp")


def test_account_and_order_mappings_produce_writable_rows(connector, emulator):
    account = {"id": "acc-1", "name": "Hafen Logistik GmbH", "tax_id": "DE1",
               "currency": "EUR", "email": "info@hafen.example"}
    customer = _compiled("customer.out.map.yaml").apply(account, DictResolver())
    [created] = connector.upsert("customers", [customer])
    assert created.action is WriteAction.CREATED
    resolver = DictResolver({("Account", "erp", created.target_id): "acc-1"})
    order = {"id": "so-1", "account_id": "acc-1", "order_date": dt.date(2024, 6, 3),
             "currency": "EUR", "lines": [{"product_code": "TG13", "quantity": Decimal("2"),
                                           "unit_price": Decimal("12.50")}]}
    row = _compiled("sales_order.out.map.yaml").apply(order, resolver)
    assert row["customer"] == created.target_id and row["delivery_date"] == "2024-06-03"
    [written] = connector.upsert("sales_orders", [row])
    assert written.action is WriteAction.CREATED
    assert emulator.get("sales_orders", written.target_id)["grand_total"] == \
        pytest.approx(29.75)


def test_sales_invoice_maps_to_canonical_invoice(connector, emulator):
    [doc] = [r for b in read_all(connector, "sales_invoices") for r in b.rows][:1]
    resolver = DictResolver({("Account", "erp", doc["customer"]): "acc-7"})
    data = _compiled("sales_invoice.in.map.yaml").apply(doc, resolver)
    invoice = entity_model("Invoice").model_validate({**data, "id": "inv-7"})
    assert invoice.invoice_number.startswith("ACC-SINV-") and invoice.account_id == "acc-7"
    assert invoice.status == "posted" and invoice.amount_due == invoice.total_amount
    assert invoice.lines[0].quantity == Decimal(str(doc["items"][0]["qty"]))
    assert invoice.updated_at.tzinfo is not None and invoice.sales_order_id is None


def test_resume_cursor_is_inclusive_iso(connector):
    batches = read_all(connector, "customers")
    assert batches[-1].cursor.value.endswith("Z")
    assert read_all(connector, "customers", Cursor(batches[-1].cursor.value,
                                                   batches[-1].cursor.key)) == []

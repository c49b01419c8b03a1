"""The Odoo mapping pack (mappings/odoo/): every mapping compiles, and applied to
records read from the emulator (or written to it) gives valid canonical
records and rows Odoo accepts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from crm2erp.connectors.odoo import OdooConfig, OdooConnector
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.emulators.odoo.app import DATABASE, PASSWORD, USERNAME, make_app
from crm2erp.mapping import DictResolver, compile_mapping, load_mapping
from crm2erp.schemas import Account, entity_model
from crm2erp.testing.canonical import canonical_records, read_rows

PACK = Path(__file__).resolve().parents[2] / "mappings" / "odoo"


def compiled(name: str):
    return compile_mapping(load_mapping(PACK / name), system="odoo")


@pytest.fixture(scope="module")
def odoo():
    app = make_app(seed=5, companies=30)
    with serve_wsgi(app):
        config = OdooConfig.model_validate({"url": app.base_url, "database": DATABASE,
                                            "username": USERNAME, "password": PASSWORD})
        with OdooConnector(config) as conn:
            yield app, conn


def resolver_for(conn) -> DictResolver:
    """Every Odoo partner id linked to a canonical id ``acc-<id>``."""
    resolver = DictResolver()
    for row in read_rows(conn, "companies"):
        resolver.add("Account", "odoo", str(row["id"]), f"acc-{row['id']}")
    return resolver


def test_every_mapping_in_the_pack_compiles():
    names = sorted(p.name for p in PACK.glob("*.map.yaml"))
    assert names == ["crm_company.in.map.yaml", "crm_contact.in.map.yaml",
                     "crm_opportunity.in.map.yaml", "erp_customer.out.map.yaml",
                     "erp_invoice.in.map.yaml", "erp_sale_order.out.map.yaml"]
    for name in names:
        assert compiled(name).spec.entity


@pytest.mark.parametrize("mapping, stream, entity", [
    ("crm_company.in.map.yaml", "companies", "Account"),
    ("crm_contact.in.map.yaml", "persons", "Contact"),
    ("crm_opportunity.in.map.yaml", "opportunities", "Opportunity"),
    ("erp_invoice.in.map.yaml", "invoices", "Invoice"),
])
def test_inbound_mappings_turn_emulator_records_into_valid_entities(odoo, mapping, stream,
                                                                    entity):
    app, conn = odoo
    inbound = compiled(mapping)
    resolver = resolver_for(conn)
    records = read_rows(conn, stream)
    assert records
    assert inbound.spec.entity == entity
    made = canonical_records(inbound, [r for r in records if inbound.matches(r)], resolver)
    assert len(made) == len(records)
    first = made[0]
    if entity == "Account":
        assert first.billing_address.country and first.customer_number.startswith("K")
        assert first.updated_at.tzinfo is not None
    if entity == "Contact":
        assert all(c.account_id.startswith("acc-") and c.last_name for c in made)
        assert made[0].first_name and " " not in made[0].last_name
    if entity == "Opportunity":
        assert {o.stage.value for o in made} <= {"open", "won", "lost"}
        assert all(o.currency == "EUR" and isinstance(o.amount, Decimal) for o in made)
    if entity == "Invoice":
        statuses = {i.status.value for i in made}
        assert {"paid", "posted", "partially_paid"} <= statuses
        for invoice in made:
            assert invoice.lines and invoice.total_amount >= invoice.amount_due
            assert invoice.extensions["odoo_origin"].startswith("S")


def test_outbound_mappings_give_rows_odoo_accepts(odoo):
    app, conn = odoo
    customer_out = compiled("erp_customer.out.map.yaml")
    order_out = compiled("erp_sale_order.out.map.yaml")
    account = Account(id="acc-new-1", name="Havel Handel GmbH", tax_id="DE123456789",
                      email="info@havel.example", billing_address={
                          "street": "Ufer 3", "postal_code": "14467", "city": "Potsdam",
                          "country": "DE"}, updated_at=dt.datetime(2025, 5, 1, tzinfo=dt.UTC))
    row = customer_out.apply(account.model_dump(mode="python"), DictResolver())
    [written] = conn.upsert("customers", [row])
    assert written.ok, written.error
    partner = conn.lookup("customers", ["acc-new-1"])["acc-new-1"]
    assert (partner["country_code"], partner["city"], partner["is_company"]) == \
        ("DE", "Potsdam", True)

    resolver = DictResolver()
    resolver.add("Account", "odoo", written.target_id, "acc-new-1")
    order = entity_model("SalesOrder").model_validate({
        "id": "so-1", "account_id": "acc-new-1", "opportunity_id": "opp-9",
        "order_date": "2025-05-02", "currency": "EUR", "status": "confirmed",
        "lines": [{"line_no": 1, "product_code": "SKU-0002", "quantity": "3",
                   "unit_price": "649.00"},
                  {"line_no": 2, "product_code": "SKU-0011", "quantity": "1",
                   "unit_price": "95.00", "discount_percent": "10"}]})
    order_row = order_out.apply(order.model_dump(mode="python"), resolver)
    [result] = conn.upsert("sale_orders", [order_row])
    assert result.ok, result.error
    saved = conn.lookup("sale_orders", ["so-1"])["so-1"]
    assert saved["state"] == "sale" and saved["partner_id"] == int(written.target_id)
    assert [line["product_uom_qty"] for line in saved["order_line"]] == [3, 1]
    assert saved["amount_untaxed"] == Decimal("2032.50")

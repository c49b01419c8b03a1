"""The Salesforce mapping pack on records read from the emulator by the real connector.

Each inbound map is applied to what the connector reads from a served
emulator (REST JSON, so the wire format is the real one) and must give
records that validate as canonical models; the outbound maps must give rows
the emulator accepts.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from crm2erp.connectors.salesforce import SalesforceConfig, SalesforceConnector
from crm2erp.demo.emulated import mess_up_org
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.emulators.salesforce.app import CLIENT_ID, CLIENT_SECRET, make_app
from crm2erp.mapping import DictResolver, compile_mapping, load_mapping
from crm2erp.mappings import pack_dir
from crm2erp.schemas import entity_model

PACK = pack_dir("salesforce")
STREAMS = {
    "accounts": {"sobject": "Account", "external_id_field": "ERP_Id__c",
                 "fields": ["Id", "Name", "Phone", "Website", "Industry", "BillingStreet",
                            "BillingCity", "BillingPostalCode", "BillingCountry",
                            "AnnualRevenue", "NumberOfEmployees"]},
    "contacts": {"sobject": "Contact", "fields": ["Id", "AccountId", "FirstName", "LastName",
                                                  "Email", "Phone", "Title"]},
    "opportunities": {"sobject": "Opportunity", "fields": ["Id", "AccountId", "Name",
                                                           "StageName", "Amount", "CloseDate",
                                                           "Probability"],
                      "children": {"lines": {"stream": "opportunity_line_items"}}},
    "opportunity_line_items": {"sobject": "OpportunityLineItem",
                               "fields": ["Id", "OpportunityId", "ProductCode", "Name",
                                          "Quantity", "UnitPrice"]},
    "products": {"sobject": "Product2", "fields": ["Id", "Name", "ProductCode", "Family",
                                                   "IsActive"]},
    "invoices": {"sobject": "ERP_Invoice__c", "external_id_field": "ERP_Id__c",
                 "fields": ["Id", "Name", "Account__c", "Opportunity__c", "Status__c",
                            "Total_Amount__c"]},
}


@pytest.fixture(scope="module")
def org():
    app = make_app(seed=3, accounts=12, contacts_per_account=1, opportunities_per_account=2,
                   products=4)
    mess_up_org(app.org, random.Random(3))
    with serve_wsgi(app):
        config = SalesforceConfig.model_validate({
            "instance_url": app.base_url, "streams": STREAMS,
            "auth": {"type": "client_credentials", "client_id": CLIENT_ID,
                     "client_secret": CLIENT_SECRET}})
        with SalesforceConnector(config) as connector:
            yield app, connector


def rows(connector, stream):
    return [row for batch in connector.read(stream) for row in batch.rows]


def inbound(name):
    return compile_mapping(load_mapping(PACK / name), system="salesforce")


def canonical(entity, data, canonical_id="c-1"):
    return entity_model(entity).model_validate({**data, "id": canonical_id})


def test_accounts_normalise_messy_rows_into_valid_accounts(org):
    _, connector = org
    mapping, valid, refused = inbound("account.in.map.yaml"), [], []
    for row in rows(connector, "accounts"):
        try:
            valid.append(canonical("Account", mapping.apply(row, DictResolver())))
        except Exception as exc:   # the one "ask reception" phone number
            refused.append(str(exc))
    assert len(valid) == 11 and len(refused) == 1 and "ask reception" in refused[0]
    assert all(a.name == a.name.strip() and "  " not in a.name for a in valid)
    assert all(a.phone.startswith("+") for a in valid)
    assert {a.billing_address.country for a in valid} <= {"DE", "GB", "US", "FR", "IT", "PT"}
    assert all(isinstance(a.extensions["annual_revenue"], Decimal) for a in valid)
    assert all(a.updated_at.tzinfo is not None for a in valid)


def test_contacts_resolve_their_account_through_the_xref(org):
    _, connector = org
    contacts = rows(connector, "contacts")
    links = {("Account", "salesforce", c["AccountId"]): f"acc-{i}"
             for i, c in enumerate(contacts)}
    mapping = inbound("contact.in.map.yaml")
    models = [canonical("Contact", mapping.apply(c, DictResolver(links))) for c in contacts]
    assert len(models) == 12 and all(m.account_id.startswith("acc-") for m in models)
    assert all(m.email and m.last_name for m in models)


def test_opportunities_and_won_ones_as_sales_orders(org):
    _, connector = org
    opportunities = rows(connector, "opportunities")
    links = {("Account", "salesforce", o["AccountId"]): "acc-1" for o in opportunities}
    resolver = DictResolver(links)
    deals = [canonical("Opportunity", inbound("opportunity.in.map.yaml").apply(o, resolver))
             for o in opportunities]
    stages = {o["Id"]: o["StageName"] for o in opportunities}
    assert {d.stage.value for d in deals} <= {"open", "won", "lost"}
    assert all(d.currency == "EUR" and isinstance(d.close_date, dt.date) for d in deals)

    won_map = inbound("won_opportunity.in.map.yaml")
    won = [o for o in opportunities if won_map.matches(o)]
    assert won and all(stages[o["Id"]] == "Closed Won" for o in won)
    orders = [canonical("SalesOrder", won_map.apply(o, resolver)) for o in won]
    assert all(o.status.value == "confirmed" and o.total_amount > 0 for o in orders)
    assert [o.opportunity_id for o in orders] == [o["Id"] for o in won]
    # the embedded OpportunityLineItem rows are the order lines; they add up to Amount
    assert all(len(o.lines) == 2 and all(line.product_code.startswith("P-")
                                         for line in o.lines) for o in orders)
    assert all(sum(line.quantity * line.unit_price for line in o.lines) == o.total_amount
               for o in orders)
    assert all(len(d.lines) == 2 for d in deals)


def test_won_opportunity_without_children_config_is_a_header(org):
    won_map = inbound("won_opportunity.in.map.yaml")
    order = won_map.apply({"Id": "006x", "AccountId": "001x", "StageName": "Closed Won",
                           "Amount": 10.0, "CloseDate": "2024-05-01"},
                          DictResolver({("Account", "salesforce", "001x"): "acc-1"}))
    assert canonical("SalesOrder", order).lines == []


def test_products(org):
    _, connector = org
    mapping = inbound("product.in.map.yaml")
    products = [canonical("Product", mapping.apply(p)) for p in rows(connector, "products")]
    assert len(products) == 4 and all(p.sku.startswith("P-") and p.active for p in products)
    assert all(p.extensions["family"] for p in products)


def test_invoice_out_lands_as_erp_invoice_custom_object(org):
    app, connector = org
    account = rows(connector, "accounts")[0]["Id"]
    opportunity = rows(connector, "opportunities")[0]["Id"]
    resolver = DictResolver({("Account", "salesforce", account): "acc-1",
                             ("SalesOrder", "salesforce", opportunity): "so-1"})
    invoice = canonical("Invoice", {
        "account_id": "acc-1", "sales_order_id": "so-1", "invoice_number": "90000017",
        "invoice_date": dt.date(2025, 3, 1), "status": "posted", "currency": "EUR",
        "total_amount": Decimal("1200.00"), "tax_amount": Decimal("228.00")})
    data = invoice.model_dump(mode="python")
    data["status"] = invoice.status.value
    row = compile_mapping(load_mapping(PACK / "invoice.out.map.yaml"),
                          system="salesforce").apply(data, resolver)
    assert row["Account__c"] == account and row["Opportunity__c"] == opportunity
    [result] = connector.upsert("invoices", [row])
    assert result.ok and result.action.value == "created", result.error
    [stored] = [r for r in app.org.records("ERP_Invoice__c") if r["ERP_Id__c"] == "90000017"]
    assert stored["Total_Amount__c"] == 1200.0 and stored["Status__c"] == "posted"


def test_account_out_upserts_on_the_erp_number(org):
    app, connector = org
    account = canonical("Account", {"name": "Nordwind Logistik GmbH", "customer_number": "1000777",
                                    "phone": "+49 30 1234567",
                                    "billing_address": {"city": "Hamburg", "country": "DE"}})
    row = compile_mapping(load_mapping(PACK / "account.out.map.yaml"),
                          system="salesforce").apply(account.model_dump(mode="python"),
                                                     DictResolver())
    assert row["ERP_Id__c"] == "1000777" and row["BillingCountry"] == "DE"
    first, second = connector.upsert("accounts", [row]), connector.upsert("accounts", [row])
    assert first[0].action.value == "created" and second[0].action.value == "updated"
    assert sum(1 for r in app.org.records("Account") if r["ERP_Id__c"] == "1000777") == 1

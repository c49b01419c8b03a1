"""The salesforce-sap flow pack end to end, against the Salesforce and SAP emulators.

Accounts land in SAP as business partners once and get the partner number
written back onto Account.ERP_Id__c, won opportunities become sales orders
sold to them with one item per OpportunityLineItem, SAP's billing documents
come back to Salesforce as ERP_Invoice__c records with the billed amounts,
linked to account and opportunity, and a second run changes nothing. The
messy org's account with a negative annual revenue is quarantined by the
pack's quality rule: a dead letter of stage quality, no business partner.
"""

from __future__ import annotations

import os
from decimal import Decimal

import requests

from crm2erp.demo.emulated import NEGATIVE_REVENUE, bill_new_orders, seed_salesforce, seed_sap
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.emulators.sap.app import PASSWORD, USERNAME
from crm2erp.engine import Engine
from crm2erp.mapping import load_project, validate_project
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore
from tests.clirunner import run

PACK = pack_dir("packs/salesforce-sap")
FLOWS = ["sf_sap_accounts", "sf_sap_orders", "sf_sap_invoices"]


def test_pack_validates_through_the_cli_without_any_environment():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SF_", "SAP_"))}
    done = run(["mappings", "validate", str(PACK)], cwd=os.getcwd(), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok" in done.stdout
    # a real system's settings come from the environment
    issues = validate_project(PACK, env={"SF_INSTANCE_URL": "not a url"})
    # `mappings validate` checks connector settings, at their position
    assert [(i.line, i.column) for i in issues] == [(12, 19)]
    assert "instance_url must look like https://" in issues[0].message
    assert load_project(PACK, env={"SF_INSTANCE_URL": "not a url"})  # the loader does not
    project = load_project(PACK, env={"SAP_SALES_ORG": "2000"})
    assert project.connections["sap"].settings["streams"]["sales_orders"][
        "create_defaults"]["SalesOrganization"] == "2000"


#: the messy org's account with a negative annual revenue (crm2erp.demo.emulated)
QUARANTINED = "001Hn0000000010IAA"


def read_business_partners(sap_url: str) -> list[dict]:
    session = requests.Session()
    session.auth = (USERNAME, PASSWORD)
    url = f"{sap_url}/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner"
    params, partners = {"$format": "json"}, []
    while url:
        page = session.get(url, params=params).json()["d"]
        partners += page["results"]
        url, params = page.get("__next"), None
    return partners


def run_all(engine, sap_app):
    results = []
    for name in FLOWS:
        if name == "sf_sap_invoices":
            bill_new_orders(sap_app)
        results.append(engine.run(name))
    return {r.flow: r for r in results}


def test_accounts_orders_and_invoices_round_trip(tmp_path):
    sf_app, sap_app = seed_salesforce(accounts=15, seed=5), seed_sap()
    sap_partners_before = sap_app.count("business_partners")
    with serve_wsgi(sf_app) as sf_url, serve_wsgi(sap_app) as sap_url:
        project = load_project(PACK, env={"SF_INSTANCE_URL": sf_url, "SAP_BASE_URL": sap_url})
        store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        try:
            with Engine(project, store) as engine:
                first = run_all(engine, sap_app)
                second = run_all(engine, sap_app)
            letters = store.dead_letters(status=("open", "parked"), limit=100)
        finally:
            store.close()
        partners_read_back = read_business_partners(sap_url)

    won = [o for o in sf_app.org.records("Opportunity") if o["StageName"] == "Closed Won"]
    accounts = first["sf_sap_accounts"].counts
    # "ask reception" (no phone number) and the negative annual revenue (quality rule)
    assert accounts["created"] == 13 and accounts["failed"] == 2
    held = {letter.source_key: letter for letter in letters if letter.flow == "sf_sap_accounts"}
    assert sorted(held) == ["001Hn0000000006IAA", QUARANTINED]
    assert held["001Hn0000000006IAA"].stage == "map"
    assert held[QUARANTINED].stage == "quality"
    assert held[QUARANTINED].error.startswith(
        "quality: rule 'annual revenue is not negative' (expect_column_values_to_be_between "
        "on extensions.annual_revenue) failed")
    assert float(held[QUARANTINED].payload["AnnualRevenue"]) == NEGATIVE_REVENUE
    assert sap_app.count("business_partners") == sap_partners_before + 13
    # read back through SAP's OData API: the quarantined account is no business partner
    bad = next(a for a in sf_app.org.records("Account") if a["Id"] == QUARANTINED)
    assert len(partners_read_back) == sap_partners_before + 13
    names = {p["OrganizationBPName1"] for p in partners_read_back}
    assert " ".join(bad["Name"].split()) not in names

    parked = sum(1 for letter in letters if letter.flow == "sf_sap_orders")
    orders = first["sf_sap_orders"].counts
    assert orders["created"] + parked == len(won) and orders["created"] > 0
    sap_orders = sap_app.find("sales_orders")
    assert len(sap_orders) == orders["created"]
    customers = {p["BusinessPartner"] for p in sap_app.find("business_partners")}
    assert all(o["SoldToParty"] in customers and o["SalesOrganization"] == "1010"
               for o in sap_orders)

    # write-back: every synced account carries its SAP business partner number
    accounts_sf = {a["Id"]: a for a in sf_app.org.records("Account")}
    partners = {p["BusinessPartnerIDByExtSystem"]: p["BusinessPartner"]
                for p in sap_app.find("business_partners")}
    written = [a for a in accounts_sf.values() if a["ERP_Id__c"]]
    assert len(written) == 13 and first["sf_sap_accounts"].counts["written_back"] == 13
    assert {a["ERP_Id__c"] for a in written} <= set(partners.values())
    assert accounts_sf["001Hn0000000006IAA"]["ERP_Id__c"] is None   # held back, not synced
    assert accounts_sf[QUARANTINED]["ERP_Id__c"] is None

    # every order carries the opportunity's line items, priced as in Salesforce
    lines = {}
    for item in sf_app.org.records("OpportunityLineItem"):
        lines.setdefault(item["OpportunityId"], []).append(item)
    by_amount = {}
    for opp in won:
        items = sorted((i["ProductCode"], Decimal(str(i["Quantity"])),
                        Decimal(str(i["UnitPrice"]))) for i in lines[opp["Id"]])
        by_amount.setdefault(Decimal(str(opp["Amount"])).quantize(Decimal("0.01")),
                             []).append(items)
    for order in sap_orders:
        items = order["to_Item"]["results"] if isinstance(order["to_Item"], dict) \
            else order["to_Item"]
        assert len(items) == 2 and all(i["Material"].startswith("TG") for i in items)
        total = Decimal(str(order["TotalNetAmount"]))
        assert sum(Decimal(str(i["NetAmount"])) for i in items) == total
        got = sorted((i["Material"], Decimal(str(i["RequestedQuantity"])),
                      Decimal(str(i["NetPriceAmount"]))) for i in items)
        assert got in by_amount[total], (total, got)

    invoices = sf_app.org.records("ERP_Invoice__c")
    assert first["sf_sap_invoices"].counts["created"] == len(invoices) == len(sap_orders)
    won_ids = {o["Id"] for o in won}
    account_ids = {a["Id"] for a in sf_app.org.records("Account")}
    assert all(i["Opportunity__c"] in won_ids and i["Account__c"] in account_ids
               for i in invoices)
    assert all(i["Status__c"] == "posted" and i["Currency__c"] == "EUR" for i in invoices)
    # billed amounts: the order's net value (the map's total_amount), 19 % tax on it
    order_totals = sorted(Decimal(str(o["TotalNetAmount"])) for o in sap_orders)
    assert all(Decimal(str(i["Total_Amount__c"])) > 0 for i in invoices)
    assert sorted(Decimal(str(i["Total_Amount__c"])) for i in invoices) == order_totals
    assert all(Decimal(str(i["Tax_Amount__c"])) == (Decimal(str(i["Total_Amount__c"]))
                                                    * Decimal("0.19")).quantize(Decimal("0.01"))
               for i in invoices)

    for result in second.values():
        assert result.changed == 0, (result.flow, dict(result.counts))
    assert len(sf_app.org.records("ERP_Invoice__c")) == len(invoices)
    assert len(sap_app.find("sales_orders")) == len(sap_orders)

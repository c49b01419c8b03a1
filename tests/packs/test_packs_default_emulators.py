"""Every emulator-backed flow pack, run on its emulators as they come (default seeds).

What `crm2erp emulator run <name>` serves must be data the shipped packs accept:
a run leaves no dead letter, and the target, read back through its own API,
holds each source record once with its values. The default seeds hold no
deliberately bad row (the demo's messy org adds two, "ask reception" and a
negative annual revenue that the salesforce-sap pack's quality rule
quarantines; tests/packs/test_salesforce_sap_pack.py expects them as the only
dead letters), so the expected dead letters here are none: the quality rule
runs on every account and rejects none of the default seeds. The one thing set per run is the
product catalogue the ERP knows (as in a real installation, the CRM's product
numbers must exist as ERP items); hubspot-tryton runs against a real trytond in
tests/tryton/test_pack_hubspot_tryton.py.
"""

from __future__ import annotations

import contextlib
import importlib

import phonenumbers
import pytest
import requests

from crm2erp.demo.emulated import bill_new_orders
from crm2erp.emulators.dynamics.app import make_app as dynamics_app
from crm2erp.emulators.erpnext.app import make_app as erpnext_app
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.emulators.odoo.app import make_app as odoo_app
from crm2erp.emulators.salesforce.app import make_app as salesforce_app
from crm2erp.emulators.sap.app import PASSWORD, USERNAME
from crm2erp.emulators.sap.app import make_app as sap_app
from crm2erp.engine import Engine
from crm2erp.mapping import DictResolver, compile_mapping, load_mapping, load_project
from crm2erp.mapping.builtin_refs import country_code
from crm2erp.mappings import pack_dir
from crm2erp.schemas import entity_model
from crm2erp.store import StateStore
from crm2erp.testing.canonical import read_streams

#: deliberately bad rows of the default seeds, by flow: (source key, what is wrong)
SEEDED_BAD_ROWS: dict[str, list[tuple[str, str]]] = {}


def run_pack(tmp_path, pack: str, apps: list, env, flows: list[str], between=None):
    """Run ``flows`` twice; returns (first run results, second run results, dead letters)."""
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(serve_wsgi(app)) for app in apps]
        project = load_project(pack_dir(pack), env=env(*urls))
        store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        stack.callback(store.close)
        runs = []
        with Engine(project, store) as engine:
            for _ in range(2):
                results = {}
                for flow in flows:
                    if between:
                        between(flow)
                    results[flow] = engine.run(flow)
                runs.append(results)
        letters = store.dead_letters(status=("open", "parked"), limit=10_000)
    return runs[0], runs[1], [(d.flow, d.source_key, d.error) for d in letters]


def expected_letters(flows: list[str]) -> list[tuple]:
    return [(flow, key, reason) for flow in flows for key, reason in SEEDED_BAD_ROWS.get(flow, [])]


def test_salesforce_sap_on_default_emulators(tmp_path):
    flows = ["sf_sap_accounts", "sf_sap_orders", "sf_sap_invoices"]
    sf = salesforce_app()
    sap = sap_app(sales_orders=0, billing_documents=0)   # SAP bills what the CRM sold
    seeded = sap.count("business_partners")

    def billing_run(flow):
        if flow == "sf_sap_invoices":
            bill_new_orders(sap)

    first, second, letters = run_pack(
        tmp_path, "packs/salesforce-sap", [sf, sap],
        lambda sf_url, sap_url: {"SF_INSTANCE_URL": sf_url, "SAP_BASE_URL": sap_url},
        flows, billing_run)
    assert letters == expected_letters(flows)
    accounts = sf.org.records("Account")
    assert first["sf_sap_accounts"].counts["created"] == len(accounts) == 100
    assert all(r.changed == 0 for r in second.values()), {f: dict(r.counts)
                                                          for f, r in second.items()}

    # read back through SAP's OData API: each account once, with its phone and address
    session = requests.Session()
    session.auth = (USERNAME, PASSWORD)
    with serve_wsgi(sap) as sap_url:
        url = f"{sap_url}/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner"
        params = {"$format": "json", "$expand": "to_BusinessPartnerAddress/to_PhoneNumber"}
        partners = []
        while url:
            page = session.get(url, params=params).json()["d"]
            partners += page["results"]
            url, params = page.get("__next"), None
    assert len(partners) == seeded + len(accounts)
    by_number = {p["BusinessPartner"]: p for p in partners}
    for account in accounts:
        bp = by_number[account["ERP_Id__c"]]
        assert bp["OrganizationBPName1"] == account["Name"]
        [address] = bp["to_BusinessPartnerAddress"]["results"]
        assert address["CityName"] == account["BillingCity"]
        assert address["Country"] == country_code(account["BillingCountry"])
        [phone] = address["to_PhoneNumber"]["results"]
        assert phone["IsDefaultPhoneNumber"] is True
        assert phone["PhoneNumber"] == phonenumbers.format_number(
            phonenumbers.parse(account["Phone"]), phonenumbers.PhoneNumberFormat.E164)
    won = [o for o in sf.org.records("Opportunity") if o["StageName"] == "Closed Won"]
    assert len(sap.find("sales_orders")) == first["sf_sap_orders"].counts["created"] == len(won)
    assert len(sf.org.records("ERP_Invoice__c")) == len(won)


def test_dynamics_erpnext_on_default_emulators(tmp_path):
    flows = ["d365_erpnext_accounts", "d365_erpnext_orders"]
    erp = erpnext_app()
    items = sorted(erp.store.tables["Item"])
    crm = dynamics_app(product_numbers=items)
    customers_before = len(erp.store.tables["Customer"])
    first, second, letters = run_pack(
        tmp_path, "packs/dynamics-erpnext", [crm, erp],
        lambda crm_url, erp_url: {"D365_URL": crm_url, "D365_AUTHORITY_URL": crm_url,
                                  "ERPNEXT_URL": erp_url}, flows)
    assert letters == expected_letters(flows)
    accounts = crm.env.all("accounts")
    assert first["d365_erpnext_accounts"].counts["created"] == len(accounts) == 100
    assert len(erp.store.tables["Customer"]) == customers_before + len(accounts)
    customers = {d["name"]: d for d in erp.store.tables["Customer"].values()}
    assert all(customers[a["crm2erp_erpcustomerid"]]["customer_name"] == a["name"].strip()
               for a in accounts)
    won = [o for o in crm.env.all("opportunities") if o["statecode"] == 1]
    assert first["d365_erpnext_orders"].counts["created"] == len(won) > 0
    assert all(r.changed == 0 for r in second.values())


def test_odoo_odoo_on_default_emulators(tmp_path):
    flows = ["odoo_accounts", "odoo_orders"]
    crm, erp = odoo_app(), odoo_app()
    first, second, letters = run_pack(
        tmp_path, "packs/odoo-odoo", [crm, erp],
        lambda crm_url, erp_url: {"ODOO_CRM_URL": crm_url, "ODOO_ERP_URL": erp_url}, flows)
    assert letters == expected_letters(flows)
    companies = crm.records("companies")
    assert first["odoo_accounts"].counts["created"] == len(companies) > 0
    partners = erp.db.tables["res.partner"]
    assert all(partners[int(c["ref"])]["name"] == c["name"] for c in companies)
    won = [lead for lead in crm.records("opportunities") if lead["won_status"] == "won"]
    assert first["odoo_orders"].counts["created"] == len(won) > 0
    assert all(r.changed == 0 for r in second.values())


# -- the connector packs (mappings/<crm>/) on their default emulators -----------------

def _hubspot(app):
    from crm2erp.connectors.hubspot import HubSpotConfig, HubSpotConnector
    from crm2erp.emulators.hubspot.app import TOKEN

    return HubSpotConnector(HubSpotConfig.model_validate({
        "base_url": app.base_url, "search_requests_per_second": None,
        "auth": {"type": "bearer", "token": TOKEN}}))


def _dynamics(app):
    from crm2erp.connectors.dynamics import DynamicsConfig, DynamicsConnector
    from crm2erp.emulators.dynamics.app import CLIENT_ID, CLIENT_SECRET, TENANT_ID

    return DynamicsConnector(DynamicsConfig.model_validate({
        "environment_url": app.base_url, "authority_url": app.base_url, "tenant_id": TENANT_ID,
        "auth": {"type": "client_credentials", "client_id": CLIENT_ID,
                 "client_secret": CLIENT_SECRET}}))


CONNECTOR_PACKS = {
    "hubspot": ("crm2erp.emulators.hubspot.app", _hubspot, "companies", {
        "hubspot_company.in.map.yaml": "companies", "hubspot_contact.in.map.yaml": "contacts",
        "hubspot_deal.in.map.yaml": "deals", "hubspot_product.in.map.yaml": "products"}),
    "dynamics": ("crm2erp.emulators.dynamics.app", _dynamics, "accounts", {
        "dynamics_account.in.map.yaml": "accounts", "dynamics_contact.in.map.yaml": "contacts",
        "dynamics_opportunity.in.map.yaml": "opportunities",
        "dynamics_product.in.map.yaml": "products"}),
}


@pytest.mark.parametrize("pack", sorted(CONNECTOR_PACKS))
def test_connector_pack_maps_every_default_emulator_record(pack):
    """Every record the default emulator serves, read by the real connector, maps to a
    valid canonical record (the salesforce, sap, erpnext and odoo packs run above)."""
    module, connect, parents, maps = CONNECTOR_PACKS[pack]
    app = importlib.import_module(module).make_app()
    with serve_wsgi(app):
        with connect(app) as conn:
            records = read_streams(conn, maps.values())
    id_field = "id" if pack == "hubspot" else "accountid"
    resolver = DictResolver({("Account", pack, str(r[id_field])): f"acc-{r[id_field]}"
                             for r in records[parents]})
    failures = []
    for filename, stream in maps.items():
        compiled = compile_mapping(load_mapping(pack_dir(pack) / filename), system=pack)
        model = entity_model(compiled.spec.entity)
        assert records[stream]
        for row in records[stream]:
            try:
                model.model_validate(compiled.apply(row, resolver))
            except Exception as exc:   # noqa: BLE001 - every refusal is listed below
                failures.append((stream, str(exc)[:200]))
    assert failures == []

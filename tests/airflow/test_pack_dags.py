"""Every flow of the shipped packs runs to success with ``airflow dags test``.

Each test starts a pack's emulators in this process (loopback HTTP, seeded
small), points the pack's ``${VAR}`` settings at them, sets
``CRM2ERP_PROJECT`` to the pack folder and ``CRM2ERP_STATE_URL`` to a fresh
SQLite file, and runs the pack's DAGs parents first, as Airflow would on
their assets. The CLI runs one DAG per call, in a subprocess talking to the
emulators over real sockets; the records must land in the emulators' stores.
(hubspot-tryton runs against a real trytond: tests/tryton/test_airflow_tryton_pack.py.)
"""

from __future__ import annotations

import shutil

import pytest

from crm2erp.demo.emulated import bill_new_orders, seed_salesforce, seed_sap
from crm2erp.emulators.dynamics.app import make_app as dynamics_app
from crm2erp.emulators.erpnext.app import make_app as erpnext_app
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.emulators.odoo.app import make_app as odoo_app
from crm2erp.errors import ConfigError
from crm2erp.mappings import pack_dir
from crm2erp.orchestration.runtime import load_runtime_project
from crm2erp.store import StateStore


def pack_env(pack: str, tmp_path, **variables: str) -> dict[str, str]:
    """The environment of the Airflow CLI for one pack: project, state store, systems."""
    return {"CRM2ERP_PROJECT": str(pack_dir(f"packs/{pack}")),
            "CRM2ERP_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}", **variables}


def last_runs(env: dict[str, str]) -> dict:
    """The latest run record of each flow in the pack's state store."""
    with StateStore.open(env["CRM2ERP_STATE_URL"]) as store:
        runs = {}
        for run in store.list_runs(limit=50):   # newest first
            runs.setdefault(run.flow, run)
        letters = store.dead_letters(status=("open", "parked"), limit=100)
    return runs, letters


def test_salesforce_sap_flows_run_with_airflow_dags_test(airflow, tmp_path):
    sf, sap = seed_salesforce(accounts=10, seed=5), seed_sap()
    partners_before = sap.count("business_partners")
    with serve_wsgi(sf) as sf_url, serve_wsgi(sap) as sap_url:
        env = pack_env("salesforce-sap", tmp_path, SF_INSTANCE_URL=sf_url, SAP_BASE_URL=sap_url)
        airflow.dags_test("sf_sap_accounts", env)
        airflow.dags_test("sf_sap_orders", env)
        assert bill_new_orders(sap) > 0          # SAP's billing run, between the flows
        airflow.dags_test("sf_sap_invoices", env)

    runs, letters = last_runs(env)
    assert set(runs) == {"sf_sap_accounts", "sf_sap_orders", "sf_sap_invoices"}
    assert all(r.status in ("succeeded", "partial") for r in runs.values())
    # accounts: business partners in SAP, partner numbers written back to Salesforce
    accounts = runs["sf_sap_accounts"].counts
    held_back = [d for d in letters if d.flow == "sf_sap_accounts"]
    assert accounts["created"] > 0 and accounts["created"] + len(held_back) == 10
    assert sap.count("business_partners") == partners_before + accounts["created"]
    written = [a for a in sf.org.records("Account") if a["ERP_Id__c"]]
    assert len(written) == accounts["created"]
    # won opportunities: sales orders with their line items
    orders = sap.find("sales_orders")
    assert runs["sf_sap_orders"].counts["created"] == len(orders) > 0
    assert all(o["to_Item"] for o in orders)
    # billing documents: back in Salesforce as ERP_Invoice__c
    invoices = sf.org.records("ERP_Invoice__c")
    assert runs["sf_sap_invoices"].counts["created"] == len(invoices) == len(orders)


def test_dynamics_erpnext_flows_run_with_airflow_dags_test(airflow, tmp_path):
    crm = dynamics_app(seed=8, accounts=6, contacts_per_account=0, products_per_opportunity=2,
                       product_numbers=["TG11", "TG12", "TG13"])   # items of the ERPNext seed
    erp = erpnext_app(seed=9, customers=2, sales_invoices=0)
    customers_before = len(erp.store.tables["Customer"])
    with serve_wsgi(crm) as crm_url, serve_wsgi(erp) as erp_url:
        env = pack_env("dynamics-erpnext", tmp_path, D365_URL=crm_url,
                       D365_AUTHORITY_URL=crm_url, ERPNEXT_URL=erp_url)
        airflow.dags_test("d365_erpnext_accounts", env)
        airflow.dags_test("d365_erpnext_orders", env)

    runs, letters = last_runs(env)
    assert [(d.flow, d.source_key, d.error) for d in letters] == []
    assert {r.status for r in runs.values()} == {"succeeded"}
    assert runs["d365_erpnext_accounts"].counts["created"] == 6
    assert len(erp.store.tables["Customer"]) == customers_before + 6
    customers = {d["name"] for d in erp.store.tables["Customer"].values()}
    assert all(a["crm2erp_erpcustomerid"] in customers for a in crm.env.all("accounts"))
    won = [o for o in crm.env.all("opportunities") if o["statecode"] == 1]
    orders = list(erp.store.tables["Sales Order"].values())
    assert won and runs["d365_erpnext_orders"].counts["created"] == len(orders) == len(won)
    assert all(o["docstatus"] == 1 and len(o["items"]) == 2 for o in orders)


def test_odoo_odoo_flows_run_with_airflow_dags_test(airflow, tmp_path):
    crm, erp = odoo_app(seed=3, companies=8), odoo_app(seed=4, companies=2)
    partners_before = set(erp.db.tables["res.partner"])
    orders_before = set(erp.db.tables["sale.order"])
    with serve_wsgi(crm) as crm_url, serve_wsgi(erp) as erp_url:
        env = pack_env("odoo-odoo", tmp_path, ODOO_CRM_URL=crm_url, ODOO_ERP_URL=erp_url)
        airflow.dags_test("odoo_accounts", env)
        airflow.dags_test("odoo_orders", env)

    runs, letters = last_runs(env)
    assert [(d.flow, d.source_key, d.error) for d in letters] == []
    assert {r.status for r in runs.values()} == {"succeeded"}
    partners = erp.db.tables["res.partner"]
    new_partners = set(partners) - partners_before
    assert runs["odoo_accounts"].counts["created"] == len(new_partners) == 8
    # write-back: each CRM company's ref is the id of its new ERP customer
    assert {int(c["ref"]) for c in crm.records("companies")} == new_partners
    won = [lead for lead in crm.records("opportunities") if lead["won_status"] == "won"]
    new_orders = [o for n, o in erp.db.tables["sale.order"].items() if n not in orders_before]
    assert won and runs["odoo_orders"].counts["created"] == len(new_orders) == len(won)
    assert all(o["state"] == "draft" and o["partner_id"] in new_partners for o in new_orders)


def test_runtime_loader_keeps_defaults_and_marks_only_variables_without_one(tmp_path,
                                                                            monkeypatch):
    for name in ("ODOO_CRM_URL", "ODOO_CRM_DB", "ODOO_ERP_URL"):
        monkeypatch.delenv(name, raising=False)
    # a shipped pack runs on its ${VAR:-default} values when nothing is exported
    project = load_runtime_project(pack_dir("packs/odoo-odoo"), "odoo_accounts")
    assert project.connections["crm"].settings["url"] == "http://127.0.0.1:8705"
    assert project.connections["crm"].settings["database"] == "odoo"
    # a variable without a default still has to come from somewhere
    pack = pack_dir("packs/odoo-odoo")
    root = tmp_path / "packs" / "odoo-odoo"          # the flows use ../../odoo/*.map.yaml
    shutil.copytree(pack, root)
    shutil.copytree(pack.parent.parent / "odoo", tmp_path / "odoo")
    text = (root / "connections.yaml").read_text()
    (root / "connections.yaml").write_text(text.replace("${ODOO_CRM_DB:-odoo}", "${ODOO_CRM_DB}"))
    with pytest.raises(ConfigError, match=r"connection 'crm' .*ODOO_CRM_DB"):
        load_runtime_project(root, "odoo_accounts")

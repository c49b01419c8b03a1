"""Odoo CRM companies to Odoo ERP customers through the engine, with the mapping pack.

Two emulators (the CRM database and the ERP database) on loopback ports; the
project uses mappings/odoo/ as shipped. The second run writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.emulators.odoo.app import make_app
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.store import StateStore

PACK = Path(__file__).resolve().parents[2] / "mappings" / "odoo"
CONNECTIONS = """
connections:
  crm:
    type: odoo
    url: ${ODOO_CRM_URL}
    database: odoo
    username: admin
    password: emulator-api-key
    page_size: 20
  erp:
    type: odoo
    url: ${ODOO_ERP_URL}
    database: odoo
    username: admin
    password: emulator-api-key
    write_batch_size: 8
"""
FLOW = f"""
flow: odoo_companies
entity: Account
source: {{connection: crm, stream: companies, mapping: {PACK / 'crm_company.in.map.yaml'}}}
target: {{connection: erp, stream: customers, mapping: {PACK / 'erp_customer.out.map.yaml'}}}
incremental: {{cursor: write_date, lookback: 1m, batch_size: 10}}
"""


def test_odoo_to_odoo_customers_land_once(tmp_path, monkeypatch):
    crm_app, erp_app = make_app(seed=1, companies=25), make_app(seed=2, companies=4)
    with serve_wsgi(crm_app), serve_wsgi(erp_app):
        monkeypatch.setenv("ODOO_CRM_URL", crm_app.base_url)
        monkeypatch.setenv("ODOO_ERP_URL", erp_app.base_url)
        (tmp_path / "connections.yaml").write_text(CONNECTIONS)
        (tmp_path / "companies.flow.yaml").write_text(FLOW)
        store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        engine = Engine(load_project(tmp_path), store)
        try:
            first = engine.run("odoo_companies")
            second = engine.run("odoo_companies")
        finally:
            engine.close()
            store.close()
        customers = [r for r in erp_app.records("customers") if r["ref"] and
                     not r["ref"].startswith("K")]

    assert first.status == "succeeded" and first.counts["created"] == 25
    assert len(customers) == 25 == len({c["ref"] for c in customers})
    assert all(len(c["country_code"]) == 2 for c in customers)  # via country_id
    assert second.counts["created"] == second.counts["updated"] == 0

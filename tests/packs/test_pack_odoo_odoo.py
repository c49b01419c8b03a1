"""The odoo-odoo flow pack end to end, against two Odoo emulators (CRM and ERP database).

CRM companies land once as ERP customers and get the ERP partner id written
back into their ref; won opportunities become ERP quotations for the right
customer (stock crm.lead has no lines, so they stay drafts for sales to
complete); a second run changes nothing.
"""

from __future__ import annotations

from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.emulators.odoo.app import make_app
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore

PACK = pack_dir("packs/odoo-odoo")
FLOWS = ["odoo_accounts", "odoo_orders"]


def test_companies_and_won_opportunities_round_trip(tmp_path):
    crm, erp = make_app(seed=3, companies=18), make_app(seed=4, companies=3)
    erp_orders_before = len(erp.db.tables["sale.order"])
    with serve_wsgi(crm) as crm_url, serve_wsgi(erp) as erp_url:
        project = load_project(PACK, env={"ODOO_CRM_URL": crm_url, "ODOO_ERP_URL": erp_url})
        store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        try:
            with Engine(project, store) as engine:
                first = {name: engine.run(name) for name in FLOWS}
                second = {name: engine.run(name) for name in FLOWS}
            letters = store.dead_letters(status=("open", "parked"), limit=100)
        finally:
            store.close()

    assert [(d.flow, d.source_key, d.error) for d in letters] == []
    companies = crm.records("companies")
    accounts = first["odoo_accounts"].counts
    assert accounts["created"] == len(companies) == 18
    assert accounts["written_back"] == 18
    partners = erp.db.tables["res.partner"]
    # write-back: the CRM company's ref is the id of its ERP customer
    assert all(int(c["ref"]) in partners and partners[int(c["ref"])]["name"] == c["name"]
               for c in companies)

    won = [lead for lead in crm.records("opportunities") if lead["won_status"] == "won"]
    orders = first["odoo_orders"].counts
    assert orders["created"] > 0 and orders["failed"] == 0
    new = [o for n, o in erp.db.tables["sale.order"].items()
           if o.get("origin") and n > erp_orders_before]
    assert len(new) == orders["created"]
    assert all(o["state"] == "draft" and o["partner_id"] in partners for o in new)
    assert len(new) == len(won)
    by_ref = {c["id"]: int(c["ref"]) for c in companies}
    assert sorted(o["partner_id"] for o in new) == sorted(
        by_ref[lead["partner_id"][0]] for lead in won)

    for result in second.values():
        assert result.changed == 0, (result.flow, dict(result.counts))

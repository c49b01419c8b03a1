"""The hubspot-tryton flow pack end to end: the HubSpot emulator against a real trytond.

Companies land once as Tryton parties and get the party id written back into
the company's erp_id property; won deals (closedwon) become confirmed Tryton
sales with one line per line item (products P-WIDGET and P-GADGET of the
test database) at the deal's amount; a second run changes nothing, and a
reconcile of the accounts flow finds no difference.
"""

from __future__ import annotations

from decimal import Decimal

from crm2erp.emulators.hubspot.app import make_app
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir
from crm2erp.quality.reconcile import reconcile
from crm2erp.store import StateStore

PACK = pack_dir("packs/hubspot-tryton")
FLOWS = ["hs_tryton_accounts", "hs_tryton_orders"]


def test_companies_and_won_deals_round_trip(tryton_server, tryton, tmp_path):
    hubspot = make_app(seed=21, companies=15, contacts_per_company=0, deals_per_company=2,
                       line_items_per_deal=2, product_skus=["P-WIDGET", "P-GADGET"])
    with serve_wsgi(hubspot) as url:
        project = load_project(PACK, env={
            "HUBSPOT_URL": url, "TRYTON_URL": tryton_server.url,
            "TRYTON_DATABASE": tryton_server.database, "TRYTON_USER": tryton_server.username,
            "TRYTON_PASSWORD": tryton_server.password})
        store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        try:
            with Engine(project, store) as engine:
                first = {name: engine.run(name) for name in FLOWS}
                second = {name: engine.run(name) for name in FLOWS}
                checked = reconcile(engine.runner("hs_tryton_accounts"), save=False)
            letters = store.dead_letters(status=("open", "parked"), limit=100)
            companies = hubspot.portal.records("companies")
            codes = store.canonical_ids("Account", "hubspot", [c["id"] for c in companies])
            won = [d for d in hubspot.portal.records("deals")
                   if d["properties"]["dealstage"] == "closedwon"]
            refs = store.canonical_ids("SalesOrder", "hubspot", [d["id"] for d in won])
        finally:
            store.close()

    assert [(d.flow, d.source_key, d.error) for d in letters] == []
    accounts = first["hs_tryton_accounts"].counts
    assert accounts["created"] == 15 and accounts["written_back"] == 15
    parties = tryton.client.model("party.party", "search_read",
                                  [("code", "in", list(codes.values()))], 0, None, None,
                                  ["code"])
    party_ids = {p["code"]: str(p["id"]) for p in parties}
    assert len(parties) == 15
    # write-back: each company's erp_id is the id of its Tryton party
    assert {c["id"]: c["properties"]["erp_id"] for c in companies} == {
        c["id"]: party_ids[codes[c["id"]]] for c in companies}

    assert won and first["hs_tryton_orders"].counts["created"] == len(won)
    sales = tryton.client.model("sale.sale", "search_read",
                                [("reference", "in", list(refs.values()))], 0, None, None,
                                ["reference", "state", "total_amount", "lines", "party"])
    assert len(sales) == len(won)
    assert {s["state"] for s in sales} <= {"confirmed", "processing"}
    by_ref = {s["reference"]: s for s in sales}
    for deal in won:
        sale = by_ref[refs[deal["id"]]]
        assert len(sale["lines"]) == 2
        assert Decimal(str(sale["total_amount"])) == Decimal(str(deal["properties"]["amount"]))
        company = hubspot.portal.associated("deals", "companies", deal["id"])[0]
        assert str(sale["party"]) == party_ids[codes[company]]
    lines = tryton.client.model("sale.line", "search_read",
                                [("sale", "in", [s["id"] for s in sales])], 0, None, None,
                                ["product.code"])
    assert {line["product."]["code"] for line in lines} <= {"P-WIDGET", "P-GADGET"}

    # Tryton's phone format, its other parties, the read-back addresses: no differences
    assert checked.clean, (dict(checked.counts), checked.details)
    assert checked.counts["matched"] == 15

    for result in second.values():
        assert result.changed == 0, (result.flow, dict(result.counts))

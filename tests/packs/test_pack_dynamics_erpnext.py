"""The dynamics-erpnext flow pack end to end, against the Dataverse and ERPNext emulators.

Accounts land once as ERPNext customers and get the customer id written back
into the account's crm2erp_erpcustomerid column; won opportunities (statecode
1) become submitted sales orders with one item per opportunity product, at
the opportunity's amounts; a second run changes nothing.
"""

from __future__ import annotations

from decimal import Decimal

from crm2erp.emulators.dynamics.app import make_app as dynamics_app
from crm2erp.emulators.erpnext.app import make_app as erpnext_app
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore

PACK = pack_dir("packs/dynamics-erpnext")
FLOWS = ["d365_erpnext_accounts", "d365_erpnext_orders"]
ITEMS = ["TG11", "TG12", "TG13", "TG14", "TG15"]   # items of the ERPNext emulator's seed


def test_accounts_and_won_opportunities_round_trip(tmp_path):
    crm = dynamics_app(seed=8, accounts=12, contacts_per_account=0, products_per_opportunity=2,
                       product_numbers=ITEMS)
    erp = erpnext_app(seed=9, customers=3, sales_invoices=0)
    customers_before = len(erp.store.tables["Customer"])
    with serve_wsgi(crm) as crm_url, serve_wsgi(erp) as erp_url:
        project = load_project(PACK, env={"D365_URL": crm_url, "D365_AUTHORITY_URL": crm_url,
                                          "ERPNEXT_URL": erp_url})
        store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        try:
            with Engine(project, store) as engine:
                first = {name: engine.run(name) for name in FLOWS}
                second = {name: engine.run(name) for name in FLOWS}
            letters = store.dead_letters(status=("open", "parked"), limit=100)
        finally:
            store.close()

    assert letters == []
    accounts = first["d365_erpnext_accounts"].counts
    assert accounts["created"] == 12 and accounts["written_back"] == 12
    assert len(erp.store.tables["Customer"]) == customers_before + 12
    customers = {d["name"]: d for d in erp.store.tables["Customer"].values()}
    crm_accounts = crm.env.all("accounts")
    assert all(a["crm2erp_erpcustomerid"] in customers for a in crm_accounts)

    won = [o for o in crm.env.all("opportunities") if o["statecode"] == 1]
    assert len(won) == 4            # every third seeded opportunity is won
    assert first["d365_erpnext_orders"].counts["created"] == len(won)
    assert first["d365_erpnext_orders"].counts["skipped"] == 12 - len(won)
    orders = list(erp.store.tables["Sales Order"].values())
    assert len(orders) == len(won) and all(o["docstatus"] == 1 for o in orders)
    by_account = {a["accountid"]: a["crm2erp_erpcustomerid"] for a in crm_accounts}
    expected = sorted((by_account[o["_parentaccountid_value"]],
                       Decimal(str(o["estimatedvalue"])).quantize(Decimal("0.01")))
                      for o in won)
    got = []
    for order in orders:
        assert len(order["items"]) == 2 and {i["item_code"] for i in order["items"]} <= set(ITEMS)
        total = sum(Decimal(str(i["qty"])) * Decimal(str(i["rate"])) for i in order["items"])
        got.append((order["customer"], total.quantize(Decimal("0.01"))))
    assert sorted(got) == expected

    for result in second.values():
        assert result.changed == 0, (result.flow, dict(result.counts))
    assert len(erp.store.tables["Sales Order"]) == len(won)

"""Issue 4's acceptance check against a real trytond: a SQL CRM synced into
Tryton (1,000 accounts, 200 won deals), idempotent re-runs, exactly the edited
parties updated, and Tryton's invoices back in the CRM with their amounts."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm2erp.demo.systems import crm_tables
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore
from tests.tryton.project import write_project

ACCOUNTS, WON, OPEN = 1000, 200, 40
T0 = dt.datetime(2026, 10, 1, 8, 0)
PRODUCTS = [("P-WIDGET", Decimal("10.00")), ("P-GADGET", Decimal("25.50"))]


def _crm_rows() -> dict[str, list[dict]]:
    rng = random.Random(4)
    accounts = [{
        "id": f"T-{n:05d}", "company_name": f"Tryton Test {n} GmbH ",
        "account_type": "Customer", "email": f"buyer{n}@tt{n}.example",
        "phone": f"+49 30 {rng.randint(1000000, 9999999)}", "street": f"Weg {n}",
        "zip": "10115", "city": "Berlin", "country": "Germany", "vat_id": None,
        "currency": "EUR", "segment": "SMB", "erp_customer_no": None,
        "updated_at": T0 + dt.timedelta(seconds=n)} for n in range(1, ACCOUNTS + 1)]
    deals, lines = [], []
    for n in range(1, WON + OPEN + 1):
        deal_id = f"TD-{n:05d}"
        total = Decimal(0)
        for line_no, (sku, price) in enumerate(rng.sample(PRODUCTS, rng.randint(1, 2)), 1):
            qty = Decimal(rng.randint(1, 9))
            lines.append({"deal_id": deal_id, "line_no": line_no, "sku": sku, "qty": qty,
                          "unit_price": price})
            total += qty * price
        deals.append({"id": deal_id, "account_id": f"T-{rng.randint(1, ACCOUNTS):05d}",
                      "name": f"Deal {n}", "stage": "Closed Won" if n <= WON else "Negotiation",
                      "probability": 100 if n <= WON else 50, "amount": total,
                      "currency": "EUR", "close_date": dt.date(2026, 10, 15),
                      "updated_at": T0 + dt.timedelta(hours=1, seconds=n)})
    return {"accounts": accounts, "deals": deals, "deal_lines": lines}


def _project(folder, crm_url, server):
    demo, tryton = pack_dir("demo") / "maps", pack_dir("tryton")
    return write_project(folder, server, crm_url, {
        "accounts": {"table": "accounts", "key": "id", "cursor": "updated_at"},
        "deals": {"table": "deals", "key": "id", "cursor": "updated_at",
                  "children": {"lines": {"table": "deal_lines", "foreign_key": "deal_id",
                                         "key": "line_no"}}},
        "invoices": {"table": "erp_invoices", "key": "erp_invoice_no"}}, {
        "accounts.flow.yaml": f"""
            flow: tt_accounts
            entity: Account
            source: {{connection: crm, stream: accounts, mapping: {demo}/crm_account.in.map.yaml}}
            target: {{connection: erp, stream: parties, mapping: {tryton}/party.out.map.yaml}}
            incremental: {{cursor: updated_at, lookback: 1m, batch_size: 250}}
            """,
        "orders.flow.yaml": f"""
            flow: tt_orders
            entity: SalesOrder
            source: {{connection: crm, stream: deals, mapping: {demo}/crm_won_deal.in.map.yaml}}
            target: {{connection: erp, stream: sales, mapping: {tryton}/sale.out.map.yaml}}
            incremental: {{cursor: updated_at, lookback: 1m, batch_size: 100}}
            depends_on: [tt_accounts]
            """,
        "invoices.flow.yaml": f"""
            flow: tt_invoices
            entity: Invoice
            source: {{connection: erp, stream: invoices, mapping: {tryton}/invoice.in.map.yaml}}
            target: {{connection: crm, stream: invoices, mapping: {demo}/crm_invoice.out.map.yaml}}
            incremental: {{cursor: updated_at, lookback: 1m}}
            depends_on: [tt_orders]
            """}, product_defaults={"category": "Goods"})


@pytest.mark.slow
def test_crm_to_tryton_and_invoices_back(tryton_server, tryton, tmp_path):
    crm_url = f"sqlite:///{tmp_path / 'crm.db'}"
    crm = sa.create_engine(crm_url)
    meta = sa.MetaData()
    tables = crm_tables(meta)
    meta.create_all(crm)
    with crm.begin() as conn:
        for name, rows in _crm_rows().items():
            conn.execute(tables[name].insert(), rows)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    engine = Engine(load_project(_project(tmp_path / "project", crm_url, tryton_server)), store)
    try:
        accounts, orders = engine.run("tt_accounts"), engine.run("tt_orders")
        assert accounts.counts["created"] == ACCOUNTS and accounts.counts["failed"] == 0
        assert orders.counts["created"] == WON and orders.counts["skipped"] == OPEN
        assert orders.counts["failed"] == 0 and orders.counts["parked"] == 0
        won = store.canonical_ids("SalesOrder", "crm", [f"TD-{n:05d}" for n in range(1, WON + 1)])
        sales = tryton.client.model("sale.sale", "search_read",
                                    [("reference", "in", list(won.values()))], 0, None, None,
                                    ["state", "total_amount", "reference"])
        assert len(sales) == WON
        assert {s["state"] for s in sales} <= {"confirmed", "processing"}
        with crm.connect() as conn:
            amounts = dict(conn.execute(sa.select(tables["deals"].c.id,
                                                  tables["deals"].c.amount)).all())
        by_ref = {s["reference"]: s["total_amount"] for s in sales}
        assert all(Decimal(str(by_ref[won[d]])) == Decimal(str(amounts[d])) for d in won)

        again = [engine.run("tt_accounts", mode="full_refresh"),
                 engine.run("tt_orders", mode="full_refresh")]
        assert sum(r.changed for r in again) == 0

        edited = [f"T-{n:05d}" for n in range(100, 1000, 90)]
        assert len(edited) == 10
        with crm.begin() as conn:
            conn.execute(tables["accounts"].update()
                         .where(tables["accounts"].c.id.in_(edited))
                         .values(company_name=sa.func.upper(tables["accounts"].c.company_name),
                                 updated_at=T0 + dt.timedelta(days=1)))
        result = engine.run("tt_accounts")
        assert result.counts["updated"] == 10 and result.counts["created"] == 0
        codes = store.canonical_ids("Account", "crm", edited)
        parties = tryton.client.model("party.party", "search_read",
                                      [("code", "in", list(codes.values()))], 0, None, None,
                                      ["name"])
        assert sorted(p["name"] for p in parties) == sorted(
            f"TRYTON TEST {int(k[2:])} GMBH" for k in edited)

        # Tryton invoiced the confirmed sales; post a few and bring them back
        invoices = tryton.client.model(
            "account.invoice", "search", [("type", "=", "out"), ("state", "=", "draft")],
            0, 5, None)
        assert len(invoices) == 5
        tryton.client.model("account.invoice", "post", invoices)
        posted = {i["number"]: i["total_amount"] for i in tryton.client.model(
            "account.invoice", "read", invoices, ["number", "total_amount"])}
        back = engine.run("tt_invoices")
        # invoices of other tests' parties (same server) are parked: their parties
        # were never synced by this project; ours must all arrive
        assert back.counts["failed"] == 0
        with crm.connect() as conn:
            crm_invoices = dict(conn.execute(sa.select(
                tables["erp_invoices"].c.erp_invoice_no, tables["erp_invoices"].c.total)).all())
        for number, total in posted.items():
            assert Decimal(str(crm_invoices[number])) == Decimal(str(total))
    finally:
        engine.close()
        store.close()
        crm.dispose()

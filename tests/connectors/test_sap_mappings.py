"""The SAP mapping pack, and the whole engine writing to the SAP emulator.

The engine test is the issue's check: while the CRM's accounts sync into SAP
the emulator invalidates the CSRF token mid-run and another user changes a
business partner behind the connector's back (stale etag); afterwards SAP
holds every account exactly once, with the latest values.
"""

from __future__ import annotations

import datetime as dt
import shutil
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm2erp.demo.sample import sample_crm_rows
from crm2erp.demo.systems import create_systems
from crm2erp.emulators.sap.app import PASSWORD, USERNAME, make_app
from crm2erp.engine import Engine
from crm2erp.mapping import DictResolver, compile_mapping, load_mapping, load_project
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore

PACK = pack_dir("sap")


def compiled(name: str):
    return compile_mapping(load_mapping(PACK / name), system="erp")


def test_account_maps_to_business_partner_with_children():
    resolver = DictResolver()
    account = {"id": "0b6a4c1e-5d2f-4a7b-9c3d-1e2f3a4b5c6d", "name": "Nordwind Logistik GmbH",
               "tax_id": "DE123456789",
               "billing_address": {"street": "Hafenstraße 5", "postal_code": "20457",
                                   "city": "Hamburg", "country": "DE"}}
    row = compiled("business_partner.out.map.yaml").apply(account, resolver)
    assert row["BusinessPartnerIDByExtSystem"] == "0B6A4C1E5D2F4A7B9C3D"
    assert row["OrganizationBPName1"] == "Nordwind Logistik GmbH"
    assert row["to_BusinessPartnerAddress"] == {"StreetName": "Hafenstraße 5",
                                                "PostalCode": "20457", "CityName": "Hamburg",
                                                "Country": "DE"}
    assert row["to_Customer"] == {"VATRegistration": "DE123456789"}


def test_sales_order_maps_with_items_and_sold_to_party():
    resolver = DictResolver({("Account", "erp", "1000042"): "acc-1"})
    order = {"id": "5f0c-aa", "account_id": "acc-1", "order_date": dt.date(2024, 5, 1),
             "currency": "EUR", "lines": [{"product_code": "TG11", "quantity": Decimal("2"),
                                           "unit_price": Decimal("9.50")}]}
    row = compiled("sales_order.out.map.yaml").apply(order, resolver)
    assert row["SoldToParty"] == "1000042" and row["PurchaseOrderByCustomer"] == "5F0CAA"
    assert row["to_Item"][0]["Material"] == "TG11"
    assert row["to_Item"][0]["RequestedQuantityUnit"] == "PC"


def test_billing_document_from_the_emulator_maps_to_an_invoice():
    from crm2erp.schemas import entity_model

    app = make_app(seed=5, business_partners=10, sales_orders=4, billing_documents=2)
    [raw] = app.find("billing_documents", BillingDocument="90000001")
    from crm2erp.connectors.sap.rows import clean

    row = clean(raw)
    links = {("Account", "erp", row["SoldToParty"]): "acc-9",
             ("SalesOrder", "erp", row["to_Item"][0]["SalesDocument"]): "so-9"}
    data = compiled("billing_document.in.map.yaml").apply(row, DictResolver(links))
    invoice = entity_model("Invoice").model_validate({**data, "id": "inv-1"})
    assert invoice.invoice_number == "90000001" and invoice.account_id == "acc-9"
    assert invoice.sales_order_id == "so-9" and invoice.status == "posted"
    assert invoice.total_amount == Decimal(raw["TotalNetAmount"])
    assert invoice.lines[0].line_no == 10 and invoice.updated_at.tzinfo is not None


# -- the whole engine ---------------------------------------------------------------

def _project(tmp_path: Path, base_url: str) -> Path:
    root = tmp_path / "project"
    (root / "maps").mkdir(parents=True)
    for name in ("crm_account.in.map.yaml", "crm_won_deal.in.map.yaml"):
        shutil.copy(pack_dir("demo") / "maps" / name, root / "maps" / name)
    for path in PACK.glob("*.map.yaml"):
        shutil.copy(path, root / "maps" / path.name)
    (root / "connections.yaml").write_text(textwrap.dedent(f"""
        connections:
          crm:
            type: sql
            url: sqlite:///{tmp_path}/crm.db
            streams:
              accounts: {{table: accounts, key: id, cursor: updated_at}}
              deals:
                table: deals
                key: id
                cursor: updated_at
                children:
                  lines: {{table: deal_lines, foreign_key: deal_id, key: line_no}}
          erp:
            type: sap
            base_url: {base_url}
            sap_client: "100"
            auth: {{type: basic, username: {USERNAME}, password: {PASSWORD}}}
            write_batch_size: 4
            retry: {{max_attempts: 4, backoff_base: 0.001, backoff_max: 0.01}}
        """))
    (root / "accounts.flow.yaml").write_text(textwrap.dedent("""
        flow: sap_accounts
        entity: Account
        source: {connection: crm, stream: accounts, mapping: maps/crm_account.in.map.yaml}
        target: {connection: erp, stream: business_partners,
                 mapping: maps/business_partner.out.map.yaml}
        incremental: {cursor: updated_at, lookback: 5m, batch_size: 10}
        """))
    (root / "orders.flow.yaml").write_text(textwrap.dedent("""
        flow: sap_orders
        entity: SalesOrder
        source: {connection: crm, stream: deals, mapping: maps/crm_won_deal.in.map.yaml}
        target: {connection: erp, stream: sales_orders, mapping: maps/sales_order.out.map.yaml}
        incremental: {cursor: updated_at, lookback: 5m, batch_size: 10}
        depends_on: [sap_accounts]
        """))
    return root


@pytest.fixture
def sap(serve):
    return serve(make_app(seed=11, business_partners=5, sales_orders=0, billing_documents=0,
                          requirements=0, page_size=20))


def _partners_by_ext(sap) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for bp in sap.find("business_partners"):
        out.setdefault(bp["BusinessPartnerIDByExtSystem"], []).append(bp)
    return out


def test_engine_recovers_from_csrf_and_etag_refusals_without_loss_or_duplicates(
        tmp_path, sap):
    crm_url = f"sqlite:///{tmp_path}/crm.db"
    create_systems(crm_url, f"sqlite:///{tmp_path}/erp.db", sample_crm_rows(accounts=30))
    project = load_project(_project(tmp_path, sap.base_url))
    store = StateStore.open(f"sqlite:///{tmp_path}/state.db")
    with Engine(project, store) as engine:
        sap.invalidate_csrf_after(3)  # the token dies after the third $batch
        first = engine.run("sap_accounts")
        assert first.counts["created"] > 20 and first.counts["created"] + \
            first.counts["failed"] == 30
        assert sap.csrf_refusals >= 1
        synced = {link.canonical_id: link.external_id for link in
                  store.xref_by_canonical("Account", "erp", [
                      c for c in store.canonical_ids("Account", "crm", [
                          f"A-{n:04d}" for n in range(1, 31)]).values()]).values()}
        assert len(synced) == first.counts["created"]

        # change three CRM accounts; SAP users touch one of them meanwhile
        engine_crm = sa.create_engine(crm_url)
        later = dt.datetime(2027, 1, 1, 12, 0)
        changed = {}
        with engine_crm.begin() as conn:
            ids = [r[0] for r in conn.execute(sa.text(
                "SELECT id FROM accounts ORDER BY id LIMIT 3"))]
            for n, account_id in enumerate(ids):
                name = f"Renamed Company {n} AG"
                conn.execute(sa.text("UPDATE accounts SET company_name = :n, updated_at = :t "
                                     "WHERE id = :i"), {"n": name, "t": later, "i": account_id})
                changed[account_id] = name
        engine_crm.dispose()
        canonical = store.canonical_ids("Account", "crm", list(changed))
        targets = store.external_ids("Account", "erp", list(canonical.values()))
        victim = targets[canonical[ids[1]]]
        sap.bump_before_write("business_partners", victim)
        sap.invalidate_csrf_after(1)
        second = engine.run("sap_accounts")
        assert second.counts["updated"] == 3 and second.counts["created"] == 0
        assert second.counts["failed"] == 0
        assert sap.etag_refusals == 1

        partners = _partners_by_ext(sap)
        dupes = {k: len(v) for k, v in partners.items() if len(v) > 1}
        assert not dupes
        seeded = 5
        assert sum(len(v) for v in partners.values()) == seeded + first.counts["created"]
        by_number = {bp["BusinessPartner"]: bp for v in partners.values() for bp in v}
        for account_id, name in changed.items():
            bp = by_number[targets[canonical[account_id]]]
            assert bp["OrganizationBPName1"] == name
        assert by_number[victim]["SearchTerm2"] == "BUMPED"

        orders = engine.run("sap_orders")
        assert orders.counts["created"] > 0
        numbers = set(by_number)
        for order in sap.find("sales_orders"):
            assert order["SoldToParty"] in numbers
            assert order["to_Item"]["results"]

"""The sales forecast flowing into SAP's demand planning (planned independent
requirements) on the SAP emulator: quantities are the probability-weighted sums
of the open deals per product and month, computed here independently."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections import defaultdict
from decimal import Decimal

import pytest

from crm2erp.demo.sample import sample_crm_rows
from crm2erp.demo.systems import create_systems
from crm2erp.emulators.sap.app import PASSWORD, USERNAME, make_app
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore

DEAL_IN = """
mapping: deal_in
direction: inbound
entity: Opportunity
fields:
  account_id: {from: account_id}
  name: {from: name}
  stage:
    from: stage
    transforms: [{value_map: {map: {Closed Won: won, Negotiation: open, Closed Lost: lost}}}]
  probability: {from: probability, transforms: [decimal]}
  close_date: {from: close_date, transforms: [date]}
  currency: {from: currency}
  lines:
    from: lines
    each:
      line_no: {from: line_no, transforms: [int]}
      product_code: {from: sku, transforms: [strip, upper]}
      quantity: {from: qty, transforms: [decimal]}
"""


@pytest.fixture
def sap(serve):
    return serve(make_app(seed=3, business_partners=0, sales_orders=0, billing_documents=0,
                          requirements=0, page_size=50))


def test_open_deals_become_planned_independent_requirements(tmp_path, sap):
    rows = sample_crm_rows(accounts=40)
    create_systems(f"sqlite:///{tmp_path}/crm.db", f"sqlite:///{tmp_path}/erp.db", rows)
    root = tmp_path / "project"
    root.mkdir()
    (root / "deal.in.map.yaml").write_text(textwrap.dedent(DEAL_IN).lstrip())
    (root / "connections.yaml").write_text(textwrap.dedent(f"""
        connections:
          crm:
            type: sql
            url: sqlite:///{tmp_path}/crm.db
            streams:
              deals:
                table: deals
                key: id
                cursor: updated_at
                children: {{lines: {{table: deal_lines, foreign_key: deal_id, key: line_no}}}}
          erp:
            type: sap
            base_url: {sap.base_url}
            auth: {{type: basic, username: {USERNAME}, password: {PASSWORD}}}
        """).lstrip())
    (root / "forecast.flow.yaml").write_text(textwrap.dedent(f"""
        flow: sap_forecast
        entity: ForecastLine
        source: {{connection: crm, stream: deals, mapping: deal.in.map.yaml}}
        target: {{connection: erp, stream: planned_independent_requirements,
                 mapping: {pack_dir("sap")}/pir.out.map.yaml}}
        forecast: {{stages: [open], weight: probability, horizon_months: 6}}
        """).lstrip())

    # the expectation, from the raw rows: every open deal is overdue or due within the
    # horizon; overdue deals count in the current month
    this_month = dt.date.today().replace(day=1)
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    open_deals = {d["id"]: d for d in rows["deals"] if d["stage"] == "Negotiation"}
    for line in rows["deal_lines"]:
        deal = open_deals.get(line["deal_id"])
        if deal is None:
            continue
        month = max(deal["close_date"].replace(day=1), this_month)
        expected[(line["sku"].strip().upper(), f"{month:%Y%m}")] += (
            Decimal(line["qty"]) * Decimal(deal["probability"]) / 100)
    assert expected, "the sample data should have open deals"

    store = StateStore.open(f"sqlite:///{tmp_path}/state.db")
    try:
        with Engine(load_project(root), store) as engine:
            first = engine.run("sap_forecast")
            assert first.counts["created"] == len(expected) and first.counts["failed"] == 0
            planned = {}
            for pir in sap.find("planned_independent_requirements"):
                items = pir["to_PlndIndepRqmtItem"]
                items = items if isinstance(items, list) else items.get("results", [items])
                for item in items:
                    planned[(pir["Product"], item["PlndIndepRqmtPeriod"])] = \
                        Decimal(str(item["PlannedQuantity"]))
            assert planned == dict(expected), (planned, dict(expected))
            assert engine.run("sap_forecast").changed == 0
    finally:
        store.close()

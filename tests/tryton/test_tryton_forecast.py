"""Sales forecast to Tryton demand planning, against a real trytond.

A SQL CRM holds open deals on the template's products; the forecast flow
writes probability-weighted demand per product and month into Tryton's stock
forecasts. Expected quantities are computed here from the plain deal data.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa

from crm2erp.connectors.base import WriteAction
from crm2erp.engine import Engine
from crm2erp.engine.forecast import add_months
from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore
from tests.tryton.project import write_project

M0 = dt.date.today().replace(day=1)

META = sa.MetaData()
DEALS = sa.Table("deals", META,
                 sa.Column("id", sa.String(20), primary_key=True),
                 sa.Column("stage", sa.String(20)),
                 sa.Column("probability", sa.Integer),
                 sa.Column("close_date", sa.Date),
                 sa.Column("updated_at", sa.DateTime, nullable=False))
LINES = sa.Table("deal_lines", META,
                 sa.Column("deal_id", sa.String(20), primary_key=True),
                 sa.Column("line_no", sa.Integer, primary_key=True),
                 sa.Column("sku", sa.String(40)),
                 sa.Column("qty", sa.Numeric(18, 4)))

# id, probability, months from now, day, [(sku, qty)]
DEALS_DATA = [
    ("F1", 40, 0, 20, [("P-WIDGET", 10), ("P-GADGET", 3)]),
    ("F2", 75, 0, 28, [("P-WIDGET", 6)]),
    ("F3", 30, 1, 5, [("P-WIDGET", 7)]),
    ("F4", 90, 1, 12, [("P-GADGET", 12)]),
    ("F5", 60, 2, 1, [("P-WIDGET", 20), ("P-GADGET", 5)]),
    ("F6", 25, 2, 27, [("P-GADGET", 9)]),
]
DEAL_IN = """
mapping: fc_deal_in
direction: inbound
entity: Opportunity
fields:
  account_id: {value: any}
  name: {from: id}
  stage: {from: stage, transforms: [{value_map: {map: {Open: open, Lost: lost}}}]}
  probability: {from: probability, transforms: [decimal]}
  close_date: {from: close_date, transforms: [date]}
  lines:
    from: lines
    each:
      product_code: {from: sku}
      quantity: {from: qty, transforms: [decimal]}
"""


def expected(lost: set[str] = frozenset()) -> dict[tuple[str, dt.date], Decimal]:
    """Weighted sums per product and month, rounded to whole Units (half up)."""
    sums: dict[tuple[str, dt.date], Decimal] = {}
    for deal_id, prob, months, _, lines in DEALS_DATA:
        for sku, qty in lines:
            key = (sku, add_months(M0, months))
            weighted = Decimal(qty) * prob / 100 if deal_id not in lost else Decimal(0)
            sums[key] = sums.get(key, Decimal(0)) + weighted
    return {k: v.quantize(Decimal(1), ROUND_HALF_UP) for k, v in sums.items()}


def tryton_plan(tryton) -> dict[tuple[str, dt.date], Decimal]:
    lines = tryton.client.model(
        "stock.forecast.line", "search_read",
        [("product.code", "in", ["P-WIDGET", "P-GADGET"]), ("forecast.state", "=", "done"),
         ("forecast.from_date", "<", add_months(M0, 3))],
        0, None, None, ["product.code", "quantity", "forecast.from_date"])
    return {(ln["product."]["code"], ln["forecast."]["from_date"]): Decimal(str(ln["quantity"]))
            for ln in lines}


@pytest.fixture
def project(tryton_server, tmp_path):
    crm_url = f"sqlite:///{tmp_path / 'crm.db'}"
    crm = sa.create_engine(crm_url)
    META.create_all(crm)
    with crm.begin() as conn:
        for deal_id, prob, months, day, lines in DEALS_DATA:
            conn.execute(DEALS.insert().values(
                id=deal_id, stage="Open", probability=prob,
                close_date=add_months(M0, months).replace(day=day),
                updated_at=dt.datetime(2026, 1, 1)))
            conn.execute(LINES.insert(), [{"deal_id": deal_id, "line_no": n, "sku": sku,
                                           "qty": Decimal(qty)}
                                          for n, (sku, qty) in enumerate(lines, 1)])
    folder = write_project(tmp_path / "project", tryton_server, crm_url, {
        "deals": {"table": "deals", "key": "id",
                  "children": {"lines": {"table": "deal_lines", "foreign_key": "deal_id",
                                         "key": "line_no"}}}}, {
        "forecast.flow.yaml": f"""
            flow: tt_forecast
            entity: ForecastLine
            source: {{connection: crm, stream: deals, mapping: deal.in.map.yaml}}
            target: {{connection: erp, stream: forecasts,
                      mapping: {pack_dir('tryton')}/forecast.out.map.yaml}}
            forecast: {{stages: [open], weight: probability, horizon_months: 12}}
            """,
        "deal.in.map.yaml": DEAL_IN})
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    engine = Engine(load_project(folder), store)
    yield engine, crm
    engine.close()
    store.close()
    crm.dispose()


def test_forecast_flow_plans_weighted_demand_in_tryton(project, tryton):
    engine, crm = project
    first = engine.run("tt_forecast")
    assert first.status == "succeeded", first
    want = expected()
    assert tryton_plan(tryton) == want
    assert want[("P-WIDGET", M0)] == Decimal(9)           # 10*.4 + 6*.75 = 8.5 -> 9
    assert first.counts["created"] == len(want) == 6

    # one forecast document per month, confirmed so Tryton's planning uses it
    forecasts = tryton.client.model("stock.forecast", "search_read",
                                    [("from_date", "<", add_months(M0, 3))], 0, None, None,
                                    ["from_date", "to_date", "state"])
    assert sorted(f["from_date"] for f in forecasts) == [add_months(M0, n) for n in range(3)]
    assert {f["state"] for f in forecasts} == {"done"}
    assert all(f["to_date"] == add_months(f["from_date"], 1) - dt.timedelta(days=1)
               for f in forecasts)

    with crm.begin() as conn:        # F5 is lost: its month drops to F6's share
        conn.execute(DEALS.update().where(DEALS.c.id == "F5").values(stage="Lost"))
    second = engine.run("tt_forecast")
    assert second.status == "succeeded", second
    after = expected(lost={"F5"})
    assert tryton_plan(tryton) == after
    assert after[("P-WIDGET", add_months(M0, 2))] == 0
    assert after[("P-GADGET", add_months(M0, 2))] == Decimal(2)      # 9*.25 = 2.25 -> 2
    assert second.counts["updated"] == 2 and second.counts["created"] == 0

    third = engine.run("tt_forecast")
    assert third.changed == 0 and third.counts["unchanged"] == len(after)
    assert tryton_plan(tryton) == after


def test_forecast_rows_for_unknown_or_duplicate_products_fail_alone(tryton):
    period = add_months(M0, 6)
    rows = [{"key": "NOPE|x", "product": "P-NOPE", "period": period, "quantity": 1},
            {"key": "W|1", "product": "P-WIDGET", "period": period, "quantity": "2.4"},
            {"key": "W|2", "product": "P-WIDGET", "period": period, "quantity": 3}]
    results = tryton.upsert("forecasts", rows)
    assert [r.action for r in results] == [WriteAction.FAILED, WriteAction.CREATED,
                                           WriteAction.FAILED]
    assert "sync the product first" in results[0].error
    assert "twice" in results[2].error
    found = tryton.lookup("forecasts", [f"P-WIDGET|{period:%Y-%m}"])
    assert found[f"P-WIDGET|{period:%Y-%m}"]["quantity"] == Decimal(2)   # rounded to Units

"""The forecast runner on real SQL systems: a CRM with deals and lines, an ERP plan table.

Expected quantities are computed here, independently of the runner, from the
same deal data: sum over open deals in the horizon of qty x probability / 100
per (product, month of close date), overdue deals in the current month.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm2erp.engine import Engine
from crm2erp.engine.forecast import add_months, bucket_key, parse_bucket_key
from crm2erp.errors import ConfigError
from crm2erp.mapping import compile_mapping, load_project
from crm2erp.store import StateStore

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"

CONNECTIONS = """
connections:
  crm:
    type: sql
    url: ${FC_CRM_URL}
    streams:
      deals:
        table: deals
        key: id
        cursor: updated_at
        children:
          lines: {table: deal_lines, foreign_key: deal_id, key: line_no}
  erp:
    type: sql
    url: ${FC_ERP_URL}
    streams:
      plan: {table: plan, key: line_key, id_column: id}
"""
FLOW = """
flow: pipeline_forecast
entity: ForecastLine
source: {connection: crm, stream: deals, mapping: deal.in.map.yaml}
target: {connection: erp, stream: plan, mapping: plan.out.map.yaml}
incremental: {cursor: updated_at, batch_size: 2}
forecast: {stages: [open], weight: probability, horizon_months: 6}
"""
DEAL_IN = """
mapping: deal_in
direction: inbound
entity: Opportunity
fields:
  account_id: {from: account_id}
  name: {from: name}
  stage: {from: stage, transforms: [{value_map: {map: {Open: open, Won: won, Lost: lost}}}]}
  probability: {from: probability, transforms: [decimal]}
  close_date: {from: close_date, transforms: [date]}
  lines:
    from: lines
    each:
      line_no: {from: line_no, transforms: [int]}
      product_code: {from: sku, transforms: [strip, upper]}
      quantity: {from: qty, transforms: [decimal]}
"""
PLAN_OUT = """
mapping: plan_out
direction: outbound
entity: ForecastLine
fields:
  line_key: {from: [product_code, period], transforms: [{concat: {sep: "|"}}]}
  product: {from: product_code}
  period: {from: period}
  quantity: {from: quantity}
"""

META = sa.MetaData()
DEALS = sa.Table("deals", META,
                 sa.Column("id", sa.String(20), primary_key=True),
                 sa.Column("account_id", sa.String(20)),
                 sa.Column("name", sa.String(100)),
                 sa.Column("stage", sa.String(10)),
                 sa.Column("probability", sa.Numeric(7, 4)),
                 sa.Column("close_date", sa.Date),
                 sa.Column("updated_at", sa.DateTime, nullable=False))
LINES = sa.Table("deal_lines", META,
                 sa.Column("deal_id", sa.String(20), primary_key=True),
                 sa.Column("line_no", sa.Integer, primary_key=True),
                 sa.Column("sku", sa.String(40)),
                 sa.Column("qty", sa.Numeric(18, 6)))
ERP_META = sa.MetaData()
PLAN = sa.Table("plan", ERP_META,
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("line_key", sa.String(80), nullable=False, unique=True),
                sa.Column("product", sa.String(40), nullable=False),
                sa.Column("period", sa.Date, nullable=False),
                sa.Column("quantity", sa.Numeric(18, 6), nullable=False))

TODAY = dt.date.today()
M0 = TODAY.replace(day=1)


def month(n: int, day: int = 15) -> dt.date:
    return add_months(M0, n).replace(day=day)


# id, stage, probability, close date, [(sku, qty)]
DEALS_DATA = [
    ("D1", "Open", "40", month(0), [("p-widget", "10"), ("P-GADGET", "3")]),
    ("D2", "Open", "75", month(0, 28), [("P-WIDGET", "4")]),
    ("D3", "Open", "33.3333", month(1), [("P-WIDGET", "7")]),
    ("D4", "Open", "90", month(2), [("P-GADGET", "12.5")]),
    ("D5", "Won", "100", month(1), [("P-WIDGET", "100")]),         # a sales order already
    ("D6", "Open", "50", month(9), [("P-WIDGET", "8")]),           # beyond the horizon
    ("D7", "Open", "20", month(-2), [("P-GADGET", "5")]),          # overdue: this month
    ("D8", "Open", None, month(1), [("P-GADGET", "6")]),           # no probability
    ("D9", "Open", "150", month(1), [("P-WIDGET", "2")]),          # invalid: dead letter
]


def expected(deals) -> dict[str, Decimal]:
    """The forecast computed from plain data, independently of the runner."""
    out: dict[str, Decimal] = {}
    for _, stage, prob, close, lines in deals:
        if stage != "Open" or prob is None or Decimal(prob) > 100:
            continue
        period = max(close.replace(day=1), M0)
        if period > add_months(M0, 5):
            continue
        for sku, qty in lines:
            key = f"{sku.upper()}|{period.isoformat()}"
            out[key] = out.get(key, Decimal(0)) + Decimal(qty) * Decimal(prob) / 100
    return out


class Forecast:
    def __init__(self, tmp_path: Path, monkeypatch, files: dict[str, str] | None = None):
        crm_url, erp_url = (f"sqlite:///{tmp_path / 'crm.db'}", f"sqlite:///{tmp_path / 'erp.db'}")
        self.crm, self.erp = sa.create_engine(crm_url), sa.create_engine(erp_url)
        META.create_all(self.crm)
        ERP_META.create_all(self.erp)
        monkeypatch.setenv("FC_CRM_URL", crm_url)
        monkeypatch.setenv("FC_ERP_URL", erp_url)
        self.folder = tmp_path / "project"
        self.folder.mkdir()
        texts = {"connections.yaml": CONNECTIONS, "forecast.flow.yaml": FLOW,
                 "deal.in.map.yaml": DEAL_IN, "plan.out.map.yaml": PLAN_OUT, **(files or {})}
        for name, text in texts.items():
            (self.folder / name).write_text(textwrap.dedent(text).lstrip())
        self.state_url = f"sqlite:///{tmp_path / 'state.db'}"
        self.opened: list = []

    def add(self, deals) -> None:
        at = dt.datetime(2026, 1, 1)
        with self.crm.begin() as conn:
            for deal_id, stage, prob, close, lines in deals:
                conn.execute(DEALS.insert().values(
                    id=deal_id, account_id="A1", name=f"Deal {deal_id}", stage=stage,
                    probability=None if prob is None else Decimal(prob), close_date=close,
                    updated_at=at))
                conn.execute(LINES.insert(), [
                    {"deal_id": deal_id, "line_no": n, "sku": sku, "qty": Decimal(qty)}
                    for n, (sku, qty) in enumerate(lines, 1)])

    def set_stage(self, deal_id: str, stage: str) -> None:
        with self.crm.begin() as conn:
            conn.execute(DEALS.update().where(DEALS.c.id == deal_id).values(stage=stage))

    def engine(self) -> Engine:
        store = StateStore.open(self.state_url)
        engine = Engine(load_project(self.folder), store)
        self.opened.append((engine, store))
        return engine

    def plan(self) -> dict[str, Decimal]:
        with self.erp.connect() as conn:
            return {r.line_key: Decimal(r.quantity) for r in conn.execute(sa.select(PLAN))}

    def close(self) -> None:
        for engine, store in self.opened:
            engine.close()
            store.close()
        self.crm.dispose()
        self.erp.dispose()


@pytest.fixture
def fc(tmp_path, monkeypatch):
    forecast = Forecast(tmp_path, monkeypatch)
    yield forecast
    forecast.close()


def test_forecast_is_the_probability_weighted_sum_per_product_and_month(fc):
    fc.add(DEALS_DATA)
    result = fc.engine().run("pipeline_forecast")
    want = expected(DEALS_DATA)
    assert fc.plan() == want
    # the numbers themselves, so the helper cannot be wrong in the same way
    assert want[f"P-WIDGET|{M0}"] == Decimal("7")                   # 10*.4 + 4*.75
    assert want[f"P-GADGET|{M0}"] == Decimal("2.2")                 # 3*.4 + 5*.2 (overdue)
    assert fc.plan()[f"P-WIDGET|{add_months(M0, 1)}"] == Decimal("2.333331")
    assert result.counts["read"] == 9
    assert result.counts["created"] == len(want) == 4
    assert result.counts["failed"] == 1 and result.status == "partial"
    assert result.counts["skipped"] == 3                              # won, too late, no prob
    store = StateStore.open(fc.state_url)
    letters = store.dead_letters(flow="pipeline_forecast", status="open")
    store.close()
    assert [d.source_key for d in letters] == ["D9"]
    assert "probability" in letters[0].error


def test_second_run_without_edits_changes_nothing(fc):
    fc.add(DEALS_DATA)
    engine = fc.engine()
    engine.run("pipeline_forecast")
    before = fc.plan()
    again = engine.run("pipeline_forecast")
    assert fc.plan() == before
    assert again.changed == 0
    assert again.counts["unchanged"] == len(before)
    assert again.new_dead_letters == 0            # D9 fails again, but is no news


def test_a_lost_deal_lowers_its_bucket_and_an_emptied_bucket_becomes_zero(fc):
    fc.add(DEALS_DATA)
    engine = fc.engine()
    engine.run("pipeline_forecast")
    fc.set_stage("D2", "Lost")          # P-WIDGET this month: 7 -> 4
    fc.set_stage("D4", "Lost")          # P-GADGET in two months: 11.25 -> gone
    result = engine.run("pipeline_forecast")
    plan = fc.plan()
    assert plan[f"P-WIDGET|{M0}"] == Decimal("4")
    assert plan[f"P-GADGET|{add_months(M0, 2)}"] == Decimal("0")
    assert result.counts["updated"] == 2 and result.counts["created"] == 0
    # the zero is written once; after that it is unchanged
    assert engine.run("pipeline_forecast").changed == 0


def test_fixed_deal_resolves_its_dead_letter_and_joins_the_forecast(fc):
    fc.add(DEALS_DATA)
    engine = fc.engine()
    engine.run("pipeline_forecast")
    with fc.crm.begin() as conn:
        conn.execute(DEALS.update().where(DEALS.c.id == "D9").values(probability=50))
    result = engine.run("pipeline_forecast")
    assert result.status == "succeeded"
    assert fc.plan()[f"P-WIDGET|{add_months(M0, 1)}"] == Decimal("3.333331")   # + 2*.5
    store = StateStore.open(fc.state_url)
    assert store.count_dead_letters(flow="pipeline_forecast", status="open") == 0
    store.close()


def test_retry_recomputes_the_whole_forecast(fc):
    fc.add(DEALS_DATA)
    engine = fc.engine()
    engine.run("pipeline_forecast")
    with fc.crm.begin() as conn:
        conn.execute(DEALS.update().where(DEALS.c.id == "D9").values(probability=50))
    store = StateStore.open(fc.state_url)
    results = engine.retry(store.dead_letters(flow="pipeline_forecast", status="open"))
    assert [r.mode for r in results] == ["retry"]
    assert store.count_dead_letters(flow="pipeline_forecast", status="open") == 0
    store.close()
    assert fc.plan()[f"P-WIDGET|{add_months(M0, 1)}"] == Decimal("3.333331")


def test_dry_run_writes_nothing_and_lists_the_lines(fc):
    fc.add(DEALS_DATA)
    result = fc.engine().run("pipeline_forecast", dry_run=True)
    assert fc.plan() == {}
    assert sorted(c.key for c in result.changes) == sorted(expected(DEALS_DATA))
    assert {c.action for c in result.changes} == {"create"}


def test_weight_none_counts_full_quantities(tmp_path, monkeypatch):
    flow = FLOW.replace("weight: probability", "weight: none")
    fc = Forecast(tmp_path, monkeypatch, {"forecast.flow.yaml": flow})
    try:
        fc.add([("E1", "Open", None, month(1), [("P-WIDGET", "5")]),
                ("E2", "Open", "10", month(1), [("P-WIDGET", "2")])])
        fc.engine().run("pipeline_forecast")
        assert fc.plan() == {f"P-WIDGET|{add_months(M0, 1)}": Decimal("7")}
    finally:
        fc.close()


def test_forecast_flow_must_produce_forecast_lines(tmp_path, monkeypatch):
    flow = FLOW.replace("entity: ForecastLine", "entity: Opportunity")
    fc = Forecast(tmp_path, monkeypatch, {"forecast.flow.yaml": flow})
    try:
        with pytest.raises(ConfigError) as info:
            load_project(fc.folder)
        assert "entity: ForecastLine" in str(info.value)
    finally:
        fc.close()


def test_source_mapping_must_map_to_the_from_entity(tmp_path, monkeypatch):
    wrong = DEAL_IN.replace("entity: Opportunity", "entity: ForecastLine")
    fc = Forecast(tmp_path, monkeypatch, {"deal.in.map.yaml": wrong})
    try:
        with pytest.raises(ConfigError) as info:
            load_project(fc.folder)
        assert "reads 'Opportunity' (forecast.from_entity)" in str(info.value)
    finally:
        fc.close()


def test_bucket_keys_and_month_arithmetic():
    assert add_months(dt.date(2026, 11, 1), 3) == dt.date(2027, 2, 1)
    assert add_months(dt.date(2026, 1, 1), -1) == dt.date(2025, 12, 1)
    assert bucket_key("A|B", dt.date(2026, 5, 1)) == "A|B|2026-05"
    assert parse_bucket_key("A|B|2026-05") == ("A|B", dt.date(2026, 5, 1))


def test_sap_pir_mapping_makes_one_requirement_per_product_and_month():
    from crm2erp.mapping.files import read_mapping

    spec, issues = read_mapping(MAPPINGS / "sap" / "pir.out.map.yaml")
    assert issues == [] and spec is not None
    row = compile_mapping(spec, system="s4").apply(
        {"id": "x", "product_code": "P-WIDGET", "period": dt.date(2026, 5, 1),
         "quantity": Decimal("2.5"), "uom": None, "warehouse": None}, None)
    assert row["Product"] == "P-WIDGET" and row["RequirementPlan"] == "CRM202605"
    assert row["Plant"] == "1010" and row["PlndIndepRqmtVersion"] == "00"
    assert row["to_PlndIndepRqmtItem"] == {
        "PlndIndepRqmtPeriod": "202605", "PeriodType": "M", "PlannedQuantity": Decimal("2.5"),
        "UnitOfMeasure": "PC"}

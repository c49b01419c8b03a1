"""The business view: figures from the hub's memory, checked against SQL sums over
the demo's ERP tables, each linking to the records behind it."""

import datetime as dt
import html
import re
from collections import defaultdict
from decimal import Decimal

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from crm2erp.console.app import create_app
from crm2erp.console.business import money
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.store import StateStore

# The demo pack syncs won deals only; a steward's project adds the open pipeline: CRM
# deals become canonical Opportunities, kept in an ERP table of their own.
PIPELINE_FLOW = """\
flow: demo_pipeline
entity: Opportunity
source: {connection: crm, stream: deals, mapping: maps/crm_deal.in.map.yaml}
target: {connection: erp, stream: opportunities, mapping: maps/erp_opportunity.out.map.yaml}
incremental: {cursor: updated_at, batch_size: 100}
"""
DEAL_IN = """\
mapping: crm_deal_in
direction: inbound
entity: Opportunity
fields:
  account_id: {from: account_id, transforms: [strip, {xref: {entity: Account}}]}
  name: {from: name, transforms: [strip]}
  stage:
    from: stage
    transforms: [{value_map: {map: {Closed Won: won, Closed Lost: lost, Negotiation: open},
                              on_missing: error}}]
  probability: {from: probability, transforms: [int]}
  amount: {from: amount, transforms: [{decimal: {places: 2}}]}
  currency: {from: currency, transforms: [strip, upper]}
  close_date: {from: close_date, transforms: [date]}
  updated_at: {from: updated_at, transforms: [{datetime: {tz: UTC}}]}
"""
OPPORTUNITY_OUT = """\
mapping: erp_opportunity_out
direction: outbound
entity: Opportunity
fields:
  crm_ref: {from: id}
  name: {from: name}
  stage: {from: stage}
  probability: {from: probability}
  amount: {from: amount}
  currency: {from: currency}
  close_date: {from: close_date}
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory, demo_copies):
    result = demo_copies(tmp_path_factory.mktemp("business") / "crm2erp-demo")
    erp = sa.create_engine(f"sqlite:///{result.directory / 'erp.db'}")
    with erp.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE opportunities (crm_ref VARCHAR(64) PRIMARY KEY, name VARCHAR(200), "
            "stage VARCHAR(20), probability INTEGER, amount NUMERIC(14, 2), "
            "currency VARCHAR(3), close_date DATE)"))
    erp.dispose()
    project = result.project
    (project / "pipeline.flow.yaml").write_text(PIPELINE_FLOW)
    (project / "maps" / "crm_deal.in.map.yaml").write_text(DEAL_IN)
    (project / "maps" / "erp_opportunity.out.map.yaml").write_text(OPPORTUNITY_OUT)
    connections = project / "connections.yaml"
    connections.write_text(connections.read_text().replace(
        "      invoices: {table: invoices, key: number,",
        "      opportunities: {table: opportunities, key: crm_ref}\n"
        "      invoices: {table: invoices, key: number,"))
    with StateStore.open(result.state_url) as store, \
            Engine(load_project(project), store) as engine:
        assert engine.run("demo_pipeline").status == "succeeded"
    return result


@pytest.fixture(scope="module")
def erp(demo):
    engine = sa.create_engine(f"sqlite:///{demo.directory / 'erp.db'}")
    yield engine
    engine.dispose()


def sums(erp, sql: str, **params) -> dict:
    """``SELECT key, currency, amount`` rows -> {key: (count, {currency: total})}."""
    found = defaultdict(lambda: [0, defaultdict(Decimal)])
    with erp.connect() as conn:
        for key, currency, amount in conn.execute(sa.text(sql), params):
            found[key][0] += 1
            found[key][1][currency] += Decimal(str(amount))
    return {k: (n, money(dict(totals))) for k, (n, totals) in found.items()}


def cells(page, section: str) -> list[list[str]]:
    part = re.search(rf'<section class="group" id="{section}">(.*?)</section>', page.text,
                     re.S).group(1)
    rows = [[" ".join(html.unescape(re.sub(r"<[^>]+>", "", c)).split())
             for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", part, re.S)]
    return [r for r in rows if r]    # the header rows have no td


AS_OF = dt.date.today() + dt.timedelta(days=45)    # the demo's invoices fall due in 30 days


@pytest.fixture(scope="module")
def page(demo):
    with TestClient(create_app(demo.state_url, demo.project)) as client:
        yield client.get("/business", params={"as_of": AS_OF.isoformat()}), client


def test_the_funnel_equals_sql_sums_over_the_erp(page, erp):
    shown, _ = page
    assert shown.status_code == 200
    orders = sums(erp, "SELECT 'all', currency, total FROM sales_orders")["all"]
    invoiced = sums(erp, "SELECT 'all', currency, total FROM invoices")["all"]
    paid = sums(erp, "SELECT 'all', currency, total FROM invoices WHERE status = 'paid'")["all"]
    counts, amounts = cells(shown, "funnel")
    assert counts == [str(orders[0]), str(orders[0]), str(invoiced[0]), str(paid[0])]
    assert amounts == [orders[1], orders[1], invoiced[1], paid[1]]
    assert 0 < paid[0] < invoiced[0]


def test_overdue_top_customers_and_order_status_equal_sql_sums(page, erp):
    shown, _ = page
    # per customer (two customers may share a name): (name, count, amounts)
    overdue = sums(erp, "SELECT c.id || ' ' || c.name, i.currency, i.amount_due FROM invoices "
                        "i JOIN customers c ON c.id = i.customer_id WHERE i.due_date < :day "
                        "AND i.amount_due > 0", day=AS_OF.isoformat())
    assert overdue      # a third of the invoices are paid, the rest are due
    assert sorted((r[0], int(r[1]), r[2]) for r in cells(shown, "overdue")) == sorted(
        (key.split(" ", 1)[1], n, total) for key, (n, total) in overdue.items())
    revenue = sums(erp, "SELECT c.id || ' ' || c.name, i.currency, i.total FROM invoices i "
                        "JOIN customers c ON c.id = i.customer_id")
    shown_top = [(r[0], int(r[1]), r[2]) for r in cells(shown, "top-customers")]
    assert len(shown_top) == min(10, len(revenue))
    assert set(shown_top) <= {(k.split(" ", 1)[1], n, t) for k, (n, t) in revenue.items()}
    status = sums(erp, "SELECT status, currency, total FROM sales_orders")
    assert {r[0]: (int(r[1]), r[2]) for r in cells(shown, "order-status")} == status
    # nothing is overdue the day the invoices were written
    _, client = page
    today = client.get("/business", params={"as_of": dt.date.today().isoformat()})
    assert "No invoice with an amount due was due before" in today.text


def test_pipeline_and_forecast_by_month_equal_sql_sums(page, erp):
    shown, _ = page
    with erp.connect() as conn:
        rows = conn.execute(sa.text("SELECT substr(close_date, 1, 7), currency, amount, "
                                    "probability FROM opportunities WHERE stage = 'open'")).all()
    expected = defaultdict(lambda: [0, defaultdict(Decimal), defaultdict(Decimal)])
    for month, currency, amount, probability in rows:
        expected[month][0] += 1
        expected[month][1][currency] += Decimal(str(amount))
        expected[month][2][currency] += Decimal(str(amount)) * probability / 100
    assert rows
    assert [tuple(r) for r in cells(shown, "pipeline")] == [
        (month, str(n), money(dict(total)), money(dict(weighted)))
        for month, (n, total, weighted) in sorted(expected.items())]


def test_each_figure_links_to_the_records_behind_it(page, erp):
    shown, client = page
    link = re.search(r'<td class="num" data-figure="funnel-paid"><a href="([^"]+)">',
                     shown.text).group(1)
    records = client.get(link)
    assert records.status_code == 200
    with erp.connect() as conn:
        paid = {r[0] for r in conn.execute(sa.text(
            "SELECT number FROM invoices WHERE status = 'paid'"))}
    listed = [html.unescape(re.sub(r"<[^>]+>", "", row.split("</td>")[0])).strip()
              for row in re.findall(r"<tr><td[^>]*>(.*?)</tr>", records.text, re.S)]
    assert set(listed) == paid and len(listed) == len(paid)
    overdue = re.search(r'<section class="group" id="overdue">.*?<a href="([^"]+)">(\d+)</a>',
                        shown.text, re.S)
    behind = client.get(html.unescape(overdue.group(1)))   # as of the page's date
    assert behind.status_code == 200
    assert len(re.findall(r"<tr><td title=", behind.text)) == int(overdue.group(2))
    assert client.get("/business/no-such-figure").status_code == 404
    assert client.get("/business", params={"as_of": "soon"}).status_code == 400


def test_customer_names_follow_the_account_flows_mask_unless_unmasked(demo, erp):
    with erp.connect() as conn:
        names = {r[0] for r in conn.execute(sa.text(
            "SELECT c.name FROM invoices i JOIN customers c ON c.id = i.customer_id"))}
    flow_file = demo.project / "accounts.flow.yaml"
    original = flow_file.read_text()
    flow_file.write_text(original.replace("quality:\n", "quality:\n  mask: [name]\n"))
    try:
        shown = {}
        for unmask in (False, True):
            with TestClient(create_app(demo.state_url, demo.project, unmask=unmask)) as client:
                view = client.get("/business", params={"as_of": AS_OF.isoformat()})
                link = re.search(r'<section class="group" id="top-customers">.*?'
                                 r'<a href="([^"]+)">', view.text, re.S).group(1)
                records = client.get(html.unescape(link))
                shown[unmask] = (view, records)
    finally:
        flow_file.write_text(original)
    view, records = shown[False]
    customers = [r[0] for r in cells(view, "overdue") + cells(view, "top-customers")]
    assert customers and all(c.endswith("***") for c in customers)
    assert {c[0] for c in customers} <= {n[0] for n in names}   # the first letter stays
    assert not [n for n in names if n in html.unescape(view.text + records.text)]
    behind = [html.unescape(re.sub(r"<[^>]+>", "", row.split("</td>")[1])).strip()
              for row in re.findall(r"<tr><td[^>]*>(.*?)</tr>", records.text, re.S)]
    assert behind and all(c.endswith("***") for c in behind)
    view, records = shown[True]
    assert {r[0] for r in cells(view, "top-customers")} <= names
    assert any(n in html.unescape(records.text) for n in names)

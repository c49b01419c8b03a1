"""The steward's console in a real browser (Playwright driving the system Chromium).

Each test serves its own demo project's console on a free port and works the pages
as a steward would; outcomes are read back from the ERP database. With
``CRM2ERP_ARTIFACTS`` set, screenshots of every page go there: artefacts of the run,
never committed (none are taken otherwise: nothing reads them, and each full-page
shot costs a render).
"""

import datetime as dt
import os
import re
import shutil
import socket
import threading
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn
from playwright.sync_api import expect, sync_playwright

from crm2erp.console.app import create_app
from crm2erp.console.business import money
from crm2erp.demo import DEMO_FLOWS
from crm2erp.store import StateStore
from tests.console.test_console import HOSTILE_NAME, HOSTILE_TYPE, hostile_demo
from tests.console.test_duplicate_override import seed_pending, sync
from tests.quality.dedupe_project import erp_customers

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    binary = shutil.which("chromium")      # the system's (scripts/system-deps.sh)
    assert binary, "chromium is not installed: run scripts/system-deps.sh"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=binary)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def artifacts() -> Path | None:
    """Where screenshots go: ``$CRM2ERP_ARTIFACTS/console``, or None (no screenshots)."""
    if not os.environ.get("CRM2ERP_ARTIFACTS"):
        return None
    folder = Path(os.environ["CRM2ERP_ARTIFACTS"]) / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Served:
    """The console app on 127.0.0.1 and a free port, in a thread of this process."""

    def __init__(self, app):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        while not self.server.started:       # ready when uvicorn says so
            self.thread.join(0.01)
            assert self.thread.is_alive(), "the console did not start"
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join()
        self.socket.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    dialogs = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    opened.dialogs = dialogs
    yield opened
    context.close()
    assert not dialogs, f"a dialog fired: {dialogs}"     # no script from the data ran


def shoot(page, artifacts: Path | None, name: str) -> None:
    if artifacts is not None:
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def erp_sql(directory: Path, sql: str, **params) -> list:
    engine = sa.create_engine(f"sqlite:///{directory / 'erp.db'}")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).all()
    finally:
        engine.dispose()


def test_fix_the_mapping_and_retry_the_group_from_the_page(tmp_path, page, artifacts,
                                                          demo_copies):
    demo = demo_copies(tmp_path / "crm2erp-demo")
    with Served(create_app(demo.state_url, demo.project)) as served:
        page.goto(served.url + "/")
        expect(page.locator(".attention")).to_contain_text("demo_accounts: 5 dead letter(s)")
        shoot(page, artifacts, "overview")
        page.click("text=Dead letters")
        page.fill("input[name=reason]", "value map")
        page.click("button:has-text('Filter')")
        group = page.locator("section.group", has_text="'Reseller' is not in the value map")
        expect(group).to_have_count(1)
        expect(page.locator("section.group")).to_have_count(1)
        shoot(page, artifacts, "dead-letters")
        page.click("text=Dead letters")
        group = page.locator("section.group", has_text="'Reseller' is not in the value map")
        group.locator("summary").click()
        group.locator("a", has_text="A-0013").click()
        expect(page.locator("pre.payload")).to_contain_text('"account_type": "Reseller"')
        shoot(page, artifacts, "dead-letter")
        page.go_back()
        # the steward fixes the mapping, then retries the group from the page
        map_file = demo.project / "maps" / "crm_account.in.map.yaml"
        map_file.write_text(map_file.read_text().replace(
            "Kunde: customer", "Kunde: customer, Reseller: partner"))
        group = page.locator("section.group", has_text="'Reseller' is not in the value map")
        group.locator("button", has_text="Retry the selected").click()
        expect(page.locator("h1")).to_have_text("Retried 1 dead letter(s)")
        expect(page.locator("ul.outcome li", has_text="A-0013")).to_contain_text("resolved")
        shoot(page, artifacts, "retry-outcome")
        page.click("text=Dead letters")
        expect(page.locator("body")).not_to_contain_text("'Reseller'")
        page.goto(served.url + "/flows/demo_accounts/runs")
        expect(page.locator("figure.chart svg title").first).to_have_text(
            "Records per run of demo_accounts: loaded, failed and parked")
        shoot(page, artifacts, "runs")
        page.goto(served.url + "/runs/1")
        expect(page.locator(".split .failed h2")).to_have_text("Failed: 5")
        shoot(page, artifacts, "run")
    with StateStore.open(demo.state_url) as store:
        canonical = store.canonical_ids("Account", "crm", ["A-0013"])["A-0013"]
    [(kind,)] = erp_sql(demo.directory, "SELECT kind FROM customers WHERE crm_ref = :r",
                        r=canonical)
    assert kind == "partner"


def test_review_a_duplicate_override_one_golden_field_and_accept(tmp_path, monkeypatch,
                                                                 page, artifacts):
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))
    project, state_url, _pair_id = seed_pending(tmp_path)
    with Served(create_app(state_url, project)) as served:
        page.goto(served.url + "/duplicates")
        page.locator("a", has_text="#").first.click()
        tax = page.locator("tr[data-field=tax_id] td")
        expect(tax.nth(1)).to_have_text("DE811111111")      # the ERP customer, side by side
        expect(tax.nth(2)).to_have_text("DE000000000")      # the CRM account
        expect(page.locator("tr[data-field=tax_id]")).to_have_class(re.compile(r"\bdiffers\b"))
        expect(page.locator("input[name='golden.tax_id']")).to_have_value("DE811111111")
        page.fill("input[name='golden.name']", "Nordwind Handel GmbH & Co. KG")
        page.keyboard.press("Escape")            # out of the text field: keys act again
        shoot(page, artifacts, "duplicate-pair")
        page.keyboard.press("a")                 # accept
        expect(page.locator("p.ok")).to_contain_text("accepted by")
        expect(page.locator("p.ok")).to_contain_text("1 field(s) of the golden record")
        shoot(page, artifacts, "duplicate-accepted")
    assert sync(project, state_url).status == "succeeded"
    [customer] = erp_customers(tmp_path)
    assert (customer["crm_ref"], customer["name"], customer["vat"]) == (
        "ERP-0007", "Nordwind Handel GmbH & Co. KG", "DE811111111")
    assert customer["phone"].replace(" ", "") == "+49407654321"


def test_business_view_totals_equal_sql_sums(tmp_path, page, artifacts, demo_copies):
    demo = demo_copies(tmp_path / "crm2erp-demo")
    as_of = dt.date.today() + dt.timedelta(days=45)
    with Served(create_app(demo.state_url, demo.project)) as served:
        page.goto(served.url + "/")
        page.click("text=Business view")
        page.fill("input[name=as_of]", as_of.isoformat())
        page.click("button:has-text('Show')")
        funnel = page.locator("#funnel tbody tr")
        counts = funnel.nth(0).locator("td").all_inner_texts()
        amounts = funnel.nth(1).locator("td").all_inner_texts()
        overdue = {tuple(r.locator("td").all_inner_texts())
                   for r in page.locator("#overdue tbody tr").all()}
        shoot(page, artifacts, "business")
        page.locator("#funnel td[data-figure=funnel-paid] a").click()
        listed = page.locator("table.records tbody tr td:first-child").all_inner_texts()
        shoot(page, artifacts, "business-records")

    def totals(sql: str, **params) -> dict:
        found = defaultdict(lambda: [0, defaultdict(Decimal)])
        for key, currency, amount in erp_sql(demo.directory, sql, **params):
            found[key][0] += 1
            found[key][1][currency] += Decimal(str(amount))
        return {k: (str(n), money(dict(t))) for k, (n, t) in found.items()}

    orders = totals("SELECT 1, currency, total FROM sales_orders")[1]
    billed = totals("SELECT 1, currency, total FROM invoices")[1]
    paid = totals("SELECT 1, currency, total FROM invoices WHERE status = 'paid'")[1]
    assert counts == [orders[0], orders[0], billed[0], paid[0]]
    assert amounts == [orders[1], orders[1], billed[1], paid[1]]
    due = totals("SELECT c.id || ' ' || c.name, i.currency, i.amount_due FROM invoices i "
                 "JOIN customers c ON c.id = i.customer_id WHERE i.due_date < :day AND "
                 "i.amount_due > 0", day=as_of.isoformat())
    assert overdue == {(k.split(" ", 1)[1], n, t) for k, (n, t) in due.items()}
    assert sorted(listed) == sorted(r[0] for r in erp_sql(
        demo.directory, "SELECT number FROM invoices WHERE status = 'paid'"))


def test_hostile_crm_text_is_text_on_every_page_and_a_forged_post_is_refused(
        tmp_path, page, artifacts, demo_copies):
    demo, pair_id, runs, letter = hostile_demo(tmp_path, demo_copies)
    as_of = (dt.date.today() + dt.timedelta(days=45)).isoformat()
    urls = ["/", "/dead-letters", f"/dead-letters/{letter}", "/duplicates",
            f"/duplicates/{pair_id}", "/reconciliation", f"/business?as_of={as_of}",
            *(f"/flows/{flow}/runs" for flow in DEMO_FLOWS), *(f"/runs/{r}" for r in runs)]
    with Served(create_app(demo.state_url, demo.project)) as served:
        for url in urls:
            response = page.goto(served.url + url)
            assert response.status == 200, url
            assert page.locator("img").count() == 0, url        # no element from the data
        for url, hostile in ((f"/dead-letters/{letter}", HOSTILE_NAME),
                             ("/dead-letters", HOSTILE_TYPE),
                             (f"/duplicates/{pair_id}", HOSTILE_NAME),
                             (f"/duplicates/{pair_id}", HOSTILE_TYPE),
                             (f"/business?as_of={as_of}", HOSTILE_NAME)):
            page.goto(served.url + url)
            expect(page.locator("main")).to_contain_text(hostile)
        page.goto(served.url + f"/duplicates/{pair_id}")
        shoot(page, artifacts, "hostile-pair")
        page.goto(served.url + "/reconciliation")
        shoot(page, artifacts, "reconciliation")
        forged = page.request.post(served.url + "/dead-letters/discard",
                                   form={"ids": str(letter)})
        assert forged.status == 403
    with StateStore.open(demo.state_url) as store:
        assert store.get_dead_letter(letter).status == "open"

"""The steward's console on the real state store of a real demo run.

Pages are read through Starlette's TestClient; actions are checked by reading
the store and the demo ERP database back.
"""

import datetime as dt
import html
import re

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient  # noqa: E402

from crm2erp.console.app import create_app  # noqa: E402
from crm2erp.console.views import describe_schedule, overdue  # noqa: E402
from crm2erp.demo import DEMO_FLOWS, run_demo  # noqa: E402
from crm2erp.store import StateStore  # noqa: E402
from crm2erp.store.dedupe import DedupePair  # noqa: E402

HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_TYPE = "[link=x]y[/link]"


@pytest.fixture
def demo(tmp_path, demo_copies):
    return demo_copies(tmp_path / "crm2erp-demo")


@pytest.fixture
def client(demo):
    app = create_app(demo.state_url, demo.project)
    with TestClient(app) as test_client:
        yield test_client


def text(response) -> str:
    """The page as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    cells_apart = re.sub(r"</t[dh]>", " ", response.text)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", cells_apart)).split())


def csrf(response) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', response.text).group(1)


def group_ids(page, reason_part: str) -> list[str]:
    """The dead letter ids in the group form whose reason contains ``reason_part``."""
    for form in re.findall(r"<form method=\"post\">(.*?)</form>", page.text, re.S):
        if reason_part in html.unescape(form):
            return re.findall(r'name="ids" value="(\d+)"', form)
    raise AssertionError(f"no group with {reason_part!r}")


def letter_id(demo, flow: str, key: str) -> int:
    with StateStore.open(demo.state_url) as store:
        return next(x.id for x in store.dead_letters(flow=flow, status=None, limit=1000)
                    if x.source_key == key)


def test_overview_shows_every_flow_and_what_needs_attention_first(client):
    page = client.get("/")
    assert page.status_code == 200
    shown = text(page)
    for flow in DEMO_FLOWS:
        assert f"/flows/{flow}/runs" in page.text
    attention = shown.split("Needs attention", 1)[1].split("Flows", 1)[0]
    assert "demo_accounts: 5 dead letter(s) to fix" in attention
    assert "demo_contacts: 12 parked record(s) waiting" in attention
    assert "demo_balances" not in attention            # it went through
    table = shown.split("records read, last runs", 1)[1]
    # flows needing attention come first; run #1 read 120 accounts and loaded 115
    assert table.index("demo_accounts") < table.index("demo_contacts") < table.index(
        "demo_balances")
    row = re.search(r"<tr>\s*<td><a href=\"/flows/demo_accounts/runs\">.*?</tr>",
                    page.text, re.S).group(0)
    cells = [html.unescape(re.sub("<[^>]+>", "", c)).strip()
             for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[2:8] == ["partial", "120", "115", "5", "0", "@hourly"]
    assert cells[8].endswith("ago")


def test_a_flow_on_a_clock_is_overdue_after_two_periods_without_a_finished_run():
    now = dt.datetime(2026, 12, 6, 12, 0)
    assert overdue("@hourly", now - dt.timedelta(hours=2, minutes=1), now)
    assert not overdue("@hourly", now - dt.timedelta(hours=2), now)
    assert overdue("@daily", now - dt.timedelta(days=3), now)
    assert not overdue("0 * * * *", now - dt.timedelta(days=30), now)   # cron: not judged
    assert not overdue("@hourly", None, now)            # never ran: shown as such
    assert describe_schedule(None) == "by hand"


def test_dead_letters_are_grouped_by_reason_and_filtered(client, demo):
    page = client.get("/dead-letters")
    assert page.status_code == 200
    shown = text(page)
    assert "17 dead letter(s) in 12 group(s)" in shown
    assert "2 × parent Account 'A-0007' of 'crm' is not in 'erp' yet" in shown
    # the open letters (to fix) come before the parked ones (waiting)
    assert shown.index("'Reseller' is not in the value map") < shown.index("2 × parent")
    assert len(group_ids(page, "'A-0007' of 'crm'")) == 2
    only = client.get("/dead-letters", params={"flow": "demo_accounts", "stage": "validate"})
    assert "1 dead letter(s) in 1 group(s)" in text(only)
    assert "A-0021" in text(only) and "A-0013" not in text(only)
    reason = client.get("/dead-letters", params={"reason": "VALUE MAP"})
    assert "1 dead letter(s) in 1 group(s)" in text(reason) and "A-0013" in text(reason)
    parked = client.get("/dead-letters", params={"status": "parked"})
    assert "12 dead letter(s)" in text(parked) and "A-0007</a>" not in text(parked)
    assert client.get("/dead-letters", params={"status": "bogus"}).status_code == 400


def test_a_letter_page_shows_the_stored_payload(client, demo):
    page = client.get(f"/dead-letters/{letter_id(demo, 'demo_accounts', 'A-0007')}")
    assert page.status_code == 200
    assert '"email": "info@@nordwind-logistics.example"' in text(page)
    assert "is not a valid e-mail address" in text(page)
    assert client.get("/dead-letters/99999").status_code == 404


def test_retry_a_group_after_fixing_the_mapping_puts_the_record_in_the_erp(client, demo):
    page = client.get("/dead-letters", params={"flow": "demo_accounts"})
    ids = group_ids(page, "'Reseller' is not in the value map")
    assert len(ids) == 1
    # the steward fixes the mapping in the demo project, then retries the group
    map_file = demo.project / "maps" / "crm_account.in.map.yaml"
    map_file.write_text(map_file.read_text().replace("Kunde: customer",
                                                     "Kunde: customer, Reseller: partner"))
    done = client.post("/dead-letters/retry", data={"csrf": csrf(page), "ids": ids})
    assert done.status_code == 200
    assert "Retried 1 dead letter(s)" in text(done)
    assert "#" + ids[0] + " A-0013 (demo_accounts): resolved" in text(done)
    with StateStore.open(demo.state_url) as store:
        assert store.get_dead_letter(int(ids[0])).status == "resolved"
        canonical = store.canonical_ids("Account", "crm", ["A-0013"])["A-0013"]
    erp = sa.create_engine(f"sqlite:///{demo.directory / 'erp.db'}")
    crm = sa.create_engine(f"sqlite:///{demo.directory / 'crm.db'}")
    with erp.connect() as conn:
        customer = conn.execute(sa.text("SELECT name, kind, email FROM customers "
                                        "WHERE crm_ref = :ref"), {"ref": canonical}).one()
    with crm.connect() as conn:
        source = conn.execute(sa.text("SELECT company_name, email FROM accounts "
                                      "WHERE id = 'A-0013'")).one()
    erp.dispose(), crm.dispose()
    assert customer.name == " ".join(source.company_name.split())
    assert customer.kind == "partner" and customer.email == source.email.lower()
    # the group is gone from the open list; run #1's page still shows what it was
    assert "'Reseller'" not in text(client.get("/dead-letters"))
    assert "Failed: 5" in text(client.get("/runs/1"))


def test_discard_one_letter(client, demo):
    letter = letter_id(demo, "demo_accounts", "A-0007")
    page = client.get(f"/dead-letters/{letter}")
    done = client.post("/dead-letters/discard", data={"csrf": csrf(page), "ids": [letter]})
    assert done.status_code == 200 and "Discarded 1 dead letter(s)" in text(done)
    with StateStore.open(demo.state_url) as store:
        assert store.get_dead_letter(letter).status == "discarded"
        assert store.count_dead_letters("demo_accounts", "open") == 4


def test_a_post_without_the_csrf_token_is_refused(client, demo):
    letter = letter_id(demo, "demo_accounts", "A-0007")
    assert client.post("/dead-letters/discard", data={"ids": [letter]}).status_code == 403
    assert client.post("/dead-letters/retry",
                       data={"csrf": "forged", "ids": [letter]}).status_code == 403
    with StateStore.open(demo.state_url) as store:
        assert store.get_dead_letter(letter).status == "open"


def test_runs_history_and_a_run_page_split_failed_and_parked(client, demo):
    from crm2erp.store.quality import QualityResult

    with StateStore.open(demo.state_url) as store:
        store.save_quality_results(1, "demo_accounts", [QualityResult(
            rule="vat_format", expectation="expect_column_values_to_match_regex",
            column="tax_id", severity="warning", evaluated=116, failed=3, success=False,
            sample=[HOSTILE_NAME, "XX1"])])
    history = client.get("/flows/demo_contacts/runs")
    assert history.status_code == 200 and 'href="/runs/2"' in history.text
    chart = re.search(r"<svg.*?</svg>", history.text, re.S).group(0)
    assert "Records per run of demo_contacts: loaded, failed and parked" in chart
    assert ">records<" in chart and ">runs, oldest to newest<" in chart   # axes
    assert "run #2: 228 loaded" in chart and "run #2: 12 parked" in chart
    assert "loaded failed parked" in text(history)   # the legend
    run = text(client.get("/runs/2"))
    assert "Failed: 0" in run and "Parked: 12" in run and "partial" in run
    accounts = text(client.get("/runs/1"))
    assert "Failed: 5" in accounts and "Parked: 0" in accounts
    assert f"vat_format tax_id warning 116 3 {HOSTILE_NAME}, XX1" in accounts
    assert "No quality rules ran in this run." in run
    assert client.get("/runs/999").status_code == 404


def _pair(store, left_name: str, right_name: str) -> int:
    record = {"name": left_name, "tax_id": "DE123"}
    saved = store.save_dedupe_pairs([DedupePair(
        entity="Account", left_id="c-1", right_id="c-2", flow="demo_accounts",
        status="pending", reason="review", match_probability=0.91, match_weight=3.5,
        left_label=left_name, right_label=right_name,
        details={"left": {"label": left_name, "kind": "canonical", "record": record},
                 "right": {"label": right_name, "kind": "incoming", "system": "crm",
                           "source_key": "A-0099",
                           "record": {"name": right_name, "tax_id": "DE124"}},
                 "fields": [{"field": "name", "comparison": "name", "left": left_name,
                             "right": right_name, "label": "similar", "score": 0.8,
                             "weight": 2.5}]})])
    return next(iter(saved.values()))


def hostile_demo(folder, demo_copies):
    """The demo after CRM users typed markup into names and a type: A-0013 (a dead
    letter), A-0002 (synced: an ERP customer with invoices); plus a duplicate pair of
    hostile names. Returns (demo, pair id, run ids, A-0013's dead letter id)."""
    demo = demo_copies(folder / "crm2erp-demo")
    crm = sa.create_engine(f"sqlite:///{demo.directory / 'crm.db'}")
    with crm.begin() as conn:
        conn.execute(sa.text("UPDATE accounts SET company_name = :n, account_type = :t, "
                             "updated_at = :u WHERE id = 'A-0013'"),
                     {"n": HOSTILE_NAME, "t": HOSTILE_TYPE, "u": dt.datetime(2026, 12, 1)})
        conn.execute(sa.text("UPDATE accounts SET company_name = :n, updated_at = :u "
                             "WHERE id = 'A-0002'"),
                     {"n": HOSTILE_NAME, "u": dt.datetime(2026, 12, 1)})
    crm.dispose()
    run_demo(demo.directory)
    with StateStore.open(demo.state_url) as store:
        pair_id = _pair(store, HOSTILE_NAME, HOSTILE_TYPE)
        runs = [r.id for r in store.list_runs(None, limit=100)]
    return demo, pair_id, runs, letter_id(demo, "demo_accounts", "A-0013")


def test_every_page_shows_hostile_crm_text_as_text(tmp_path, demo_copies):
    demo, pair_id, runs, letter = hostile_demo(tmp_path, demo_copies)
    app = create_app(demo.state_url, demo.project)
    with TestClient(app) as client:
        urls = ["/", "/dead-letters", "/dead-letters?status=all", f"/dead-letters/{letter}",
                "/duplicates", f"/duplicates/{pair_id}", "/reconciliation",
                "/business?as_of=2100-01-01", "/business/status-invoiced",
                *(f"/flows/{flow}/runs" for flow in DEMO_FLOWS),
                *(f"/runs/{run}" for run in runs)]
        pages = {url: client.get(url) for url in urls}
    for url, page in pages.items():
        assert page.status_code == 200, url
        assert "default-src 'none'" in page.headers["content-security-policy"], url
        assert "<img" not in page.text and "onerror=alert(1)>" not in page.text, url
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[f"/dead-letters/{letter}"].text
    for url in ("/dead-letters", f"/dead-letters/{letter}"):
        assert f"'{HOSTILE_TYPE}' is not in the value map" in text(pages[url]), url
    for url in ("/duplicates", f"/duplicates/{pair_id}"):
        assert HOSTILE_NAME in text(pages[url]) and HOSTILE_TYPE in text(pages[url]), url
    assert HOSTILE_NAME in text(pages["/business?as_of=2100-01-01"])    # a customer name


def test_duplicate_review_records_the_decision_with_who_and_when(demo):
    with StateStore.open(demo.state_url) as store:
        pair_id = _pair(store, "Nordwind Logistics GmbH", "NORDWIND LOGISTICS GMBH")
    app = create_app(demo.state_url, demo.project, password="s3cret")
    with TestClient(app) as client:
        assert client.get("/duplicates").status_code == 401
        assert client.get("/duplicates", auth=("anna", "wrong")).status_code == 401
        page = client.get(f"/duplicates/{pair_id}", auth=("anna", "s3cret"))
        assert page.status_code == 200
        row = re.search(r'<tr class="differs"[^>]*>\s*<td>name</td>.*?</tr>', page.text, re.S)
        assert row and "NORDWIND LOGISTICS GMBH" in row.group(0)     # highlighted
        assert client.post(f"/duplicates/{pair_id}/decide", auth=("anna", "s3cret"),
                           data={"decision": "accept"}).status_code == 403
        done = client.post(f"/duplicates/{pair_id}/decide", auth=("anna", "s3cret"),
                           data={"csrf": csrf(page), "decision": "accept",
                                 "note": "same VAT"})
        assert done.status_code == 200 and "accepted by anna" in text(done)
    with StateStore.open(demo.state_url) as store:
        decided = store.get_dedupe_pair(pair_id)
    assert (decided.status, decided.decided_by, decided.note) == ("accepted", "anna",
                                                                  "same VAT")
    assert decided.decided_at is not None


def test_a_retry_that_still_fails_shows_the_reason_and_a_broken_mapping_is_named(client,
                                                                                    demo):
    page = client.get("/dead-letters", params={"flow": "demo_accounts"})
    ids = group_ids(page, "'Reseller' is not in the value map")
    done = client.post("/dead-letters/retry", data={"csrf": csrf(page), "ids": ids})
    assert done.status_code == 200       # nothing fixed: still open, with its reason
    assert (f"#{ids[0]} A-0013 (demo_accounts): open: mapping 'crm_account_in', field "
            "'type': 'Reseller' is not in the value map") in text(done)
    map_file = demo.project / "maps" / "crm_account.in.map.yaml"
    map_file.write_text(map_file.read_text() + "fields: [\n")
    broken = client.post("/dead-letters/retry", data={"csrf": csrf(page), "ids": ids})
    assert broken.status_code == 400 and "crm_account.in.map.yaml" in text(broken)
    assert "Traceback" not in broken.text
    # payloads are not shown while the mask cannot be known; the overview still works
    listing = client.get("/dead-letters")
    assert listing.status_code == 400 and "crm_account.in.map.yaml" in text(listing)
    assert "demo_accounts" in text(client.get("/"))
    with StateStore.open(demo.state_url) as store:
        letter = store.get_dead_letter(int(ids[0]))
    assert (letter.status, letter.attempts) == ("open", 2)


def test_reconciliation_shows_each_difference_with_both_values(client, demo):
    from crm2erp.cli import main

    with StateStore.open(demo.state_url) as store:
        canonical = store.canonical_ids("Account", "crm", ["A-0001"])["A-0001"]
    erp = sa.create_engine(f"sqlite:///{demo.directory / 'erp.db'}")
    with erp.begin() as conn:    # someone edits the customer in the ERP
        expected = conn.execute(sa.text("SELECT name FROM customers WHERE crm_ref = :r"),
                                {"r": canonical}).scalar_one()
        conn.execute(sa.text("UPDATE customers SET name = :n WHERE crm_ref = :r"),
                     {"n": HOSTILE_NAME, "r": canonical})
    erp.dispose()
    assert "No reconciliation yet" in text(client.get("/reconciliation"))
    assert main(["-p", str(demo.project), "reconcile", "demo_accounts"]) == 1
    page = client.get("/reconciliation")
    assert page.status_code == 200 and "<img" not in page.text
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", page.text, re.S) if "A-0001" in r
               or canonical in r)
    cells = [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
    assert cells[1:4] == ["name", f'"{expected}"', f'"{HOSTILE_NAME}"']
    assert "Re-sync A-0001" in cells[4]


def test_fields_the_flow_masks_are_masked_unless_unmasked(demo):
    flow_file = demo.project / "accounts.flow.yaml"
    flow_file.write_text(flow_file.read_text().replace("quality:\n", "quality:\n  mask: [email]\n"))
    letter = letter_id(demo, "demo_accounts", "A-0007")
    shown, listed = {}, {}
    for unmask in (False, True):
        with TestClient(create_app(demo.state_url, demo.project, unmask=unmask)) as client:
            shown[unmask] = text(client.get(f"/dead-letters/{letter}"))
            listed[unmask] = text(client.get("/dead-letters"))
    assert '"email": "i***@@nordwind-logistics.example"' in shown[False]
    assert "'i***@@nordwind-logistics.example' is not a valid e-mail" in shown[False]
    assert "info@@" not in shown[False] and "info@@" not in listed[False]
    assert '"email": "info@@nordwind-logistics.example"' in shown[True]
    assert "'info@@nordwind-logistics.example' is not a valid e-mail" in listed[True]


def test_resync_one_record_from_the_reconciliation_page_repairs_the_target(client, demo):
    from crm2erp.cli import main

    with StateStore.open(demo.state_url) as store:
        canonical = store.canonical_ids("Account", "crm", ["A-0002"])["A-0002"]
    erp = sa.create_engine(f"sqlite:///{demo.directory / 'erp.db'}")
    query = sa.text("SELECT name, city FROM customers WHERE crm_ref = :r")
    with erp.begin() as conn:    # a hand edit in the ERP
        expected = conn.execute(query, {"r": canonical}).one()
        conn.execute(sa.text("UPDATE customers SET name = 'Hand Edited', city = 'Nowhere' "
                             "WHERE crm_ref = :r"), {"r": canonical})
    assert main(["-p", str(demo.project), "reconcile", "demo_accounts"]) == 1
    page = client.get("/reconciliation")
    forms = re.findall(r'<form method="post" action="/reconciliation/resync">(.*?)</form>',
                       page.text, re.S)
    assert len(forms) == 1 and "Re-sync A-0002" in forms[0]   # one button per record
    assert client.post("/reconciliation/resync", data={"flow": "demo_accounts",
                                                        "source_key": "A-0002"}
                       ).status_code == 403
    done = client.post("/reconciliation/resync", data={
        "csrf": csrf(page), "flow": "demo_accounts", "source_key": "A-0002"})
    assert done.status_code == 200
    assert "Re-synced A-0002 of demo_accounts" in text(done) and "succeeded" in text(done)
    with erp.connect() as conn:
        assert tuple(conn.execute(query, {"r": canonical}).one()) == tuple(expected)
    erp.dispose()
    with StateStore.open(demo.state_url) as store:
        run = store.list_runs("demo_accounts", limit=1)[0]
    assert (run.mode, run.updated) == ("retry", 1)
    assert main(["-p", str(demo.project), "reconcile", "demo_accounts"]) == 0
    failing = client.post("/reconciliation/resync", data={   # still unmappable: said so
        "csrf": csrf(page), "flow": "demo_accounts", "source_key": "A-0013"})
    assert failing.status_code == 200 and "Held back" in text(failing)
    assert "'Reseller' is not in the value map" in text(failing)
    gone = client.post("/reconciliation/resync", data={
        "csrf": csrf(page), "flow": "demo_accounts", "source_key": "A-9999"})
    assert gone.status_code == 400 and "has no record 'A-9999'" in text(gone)

"""Duplicate review in the console: per-field weights, the golden record acceptance
would produce, a steward's override of one field, and the target holding the golden
values after the next run (read back from the ERP database). The terminal shows the
same decision record."""

import html
import io
import re

import pytest
from rich.console import Console
from starlette.testclient import TestClient

from crm2erp.cli.dedupe import pair_table
from crm2erp.console.app import create_app
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.store import StateStore
from tests.quality.dedupe_project import account, add_erp_customer, erp_customers, make_project

OVERRIDE = "Nordwind Handel GmbH & Co. KG"


def seed_pending(folder):
    """A CRM account matching an ERP customer by name, e-mail and city, but with a
    placeholder VAT id: after one sync the pair waits for review, the CRM record
    parked. CRM2ERP_DEMO_DIR must point at ``folder``. Returns (project, state URL,
    pair id)."""
    project = make_project(folder, [
        account(1, "Nordwind Handel GmbH", email="info@nordwind.example", vat="DE000000000",
                phone="+49 40 7654321")], target=True)
    add_erp_customer(folder, crm_ref="ERP-0007", name="Nordwind Handel GmbH",
                     kind="customer", email="info@nordwind.example", vat="DE811111111",
                     city="Berlin", country="DE", currency="EUR")
    state_url = f"sqlite:///{folder / 'state.db'}"
    sync(project, state_url)
    with StateStore.open(state_url) as store:
        [pair] = store.dedupe_pairs(status="pending")
    return project, state_url, pair.id


@pytest.fixture
def pending(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))
    return (tmp_path, *seed_pending(tmp_path))


def sync(project, state_url):
    with StateStore.open(state_url) as store, Engine(load_project(project), store) as engine:
        return engine.run("accounts")


def row_cells(page, field: str) -> list[str]:
    row = re.search(rf'<tr class="[^"]*" data-field="{re.escape(field)}">(.*?)</tr>',
                    page.text, re.S).group(1)
    return [html.unescape(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_accepting_with_an_overridden_field_writes_the_golden_values(pending):
    folder, project, state_url, pair_id = pending
    with TestClient(create_app(state_url, project)) as client:
        page = client.get(f"/duplicates/{pair_id}")
        assert page.status_code == 200
        name = row_cells(page, "name")
        assert name[3] == "exact" and re.fullmatch(r"1\.00 \(\+\d+\.\d\)", name[4])
        assert 'name="golden.name" value="Nordwind Handel GmbH"' in name[5]
        # the identifier conflict: survivorship keeps the ERP's VAT id
        assert 'name="golden.tax_id" value="DE811111111"' in row_cells(page, "tax_id")[5]
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        golden = dict(re.findall(r'name="(golden\.[^"]+)" value="([^"]*)"', page.text))
        done = client.post(f"/duplicates/{pair_id}/decide", data={
            **{k: html.unescape(v) for k, v in golden.items()}, "golden.name": OVERRIDE,
            "csrf": token, "decision": "accept", "note": "legal name from the register"})
        assert done.status_code == 200
        assert "accepted by" in done.text and "1 field(s) of the golden record" in done.text
        assert 'class="golden overridden"' in done.text
    with StateStore.open(state_url) as store:
        decided = store.get_dedupe_pair(pair_id)
    assert decided.status == "accepted" and decided.details["overrides"] == {"name": OVERRIDE}
    # the terminal shows the same record: the overridden value in "if accepted"
    out = Console(file=io.StringIO(), width=250)
    out.print(pair_table(decided))
    name_line = next(x for x in out.file.getvalue().splitlines() if x.startswith("│ name"))
    assert OVERRIDE in name_line

    assert sync(project, state_url).status == "succeeded"
    [customer] = erp_customers(folder)
    assert (customer["crm_ref"], customer["name"]) == ("ERP-0007", OVERRIDE)
    assert customer["vat"] == "DE811111111"                       # survivorship's choice
    assert customer["phone"].replace(" ", "") == "+49407654321"   # the CRM's phone joined
    with StateStore.open(state_url) as store:      # a later refresh keeps the override
        assert store.get_dedupe_pair(pair_id).details["overrides"] == {"name": OVERRIDE}


def test_reject_ignores_overrides_and_the_shortcut_keys_are_wired(pending):
    _folder, project, state_url, pair_id = pending
    with TestClient(create_app(state_url, project)) as client:
        page = client.get(f"/duplicates/{pair_id}")
        assert 'data-key="a"' in page.text and 'data-key="r"' in page.text
        assert '<script src="/static/keys.js" defer></script>' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "document.querySelector" in client.get("/static/keys.js").text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        done = client.post(f"/duplicates/{pair_id}/decide", data={
            "csrf": token, "decision": "reject", "golden.name": OVERRIDE})
        assert done.status_code == 200
    with StateStore.open(state_url) as store:
        decided = store.get_dedupe_pair(pair_id)
    assert decided.status == "rejected" and "overrides" not in decided.details


def test_a_terminal_review_override_is_the_decision_the_console_shows(pending):
    import os

    from tests.clirunner import run  # in this process, as a child process sees it

    folder, project, state_url, pair_id = pending
    review = run(["-p", str(project), "--state", state_url, "dedupe", "review", "--by", "ana"],
                 input="o\nname\nNordwind Terminal KG\na\n", cwd=folder,
                 env={**os.environ, "COLUMNS": "220"})
    assert review.returncode == 0, review.stderr
    assert "if accepted" in review.stdout and "1 accepted" in review.stdout
    tax = next(x for x in review.stdout.splitlines() if x.startswith("│ tax_id"))
    assert tax.count("DE811111111") == 2 and "DE000000000" in tax   # both sides, golden
    names = [x for x in review.stdout.splitlines() if x.startswith("│ name")]
    assert "Nordwind Terminal KG" not in names[0] and "Nordwind Terminal KG" in names[1]
    with TestClient(create_app(state_url, project)) as client:
        page = client.get(f"/duplicates/{pair_id}")
    assert "(by ana," in " ".join(html.unescape(re.sub(r"<[^>]+>", "", page.text)).split())
    assert 'class="status accepted"' in page.text
    assert re.search(r'class="golden overridden">Nordwind Terminal KG<', page.text)
    assert sync(project, state_url).status == "succeeded"
    [customer] = erp_customers(folder)
    assert (customer["crm_ref"], customer["name"]) == ("ERP-0007", "Nordwind Terminal KG")

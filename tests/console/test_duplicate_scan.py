"""A pair ``dedupe scan`` found, accepted in the console with a steward's override:
merged in the ERP at once (read back from its database)."""

import html
import re

from starlette.testclient import TestClient

from crm2erp.console.app import create_app
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.quality.dedupe.scan import scan
from crm2erp.store import StateStore
from tests.quality.dedupe_project import account, customer_rows, synced_before_matching

LEGAL = "Müller Maschinenbau GmbH & Co. KG"


def test_accepting_a_scanned_pair_in_the_console_merges_it_in_the_erp(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))
    project = synced_before_matching(tmp_path, [
        account(1, "Müller Maschinenbau GmbH", email="info@mueller-mb.example"),
        account(2, "Mueller Maschinenbau", email="info@mueller-mb.example",
                phone="+49 30 1234567")])
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    with StateStore.open(state_url) as store, \
            Engine(load_project(project), store) as engine:
        runner = engine.runner("accounts")
        stage = next(s for s in runner.stages if s.name == "dedupe")
        [(pair, queued_before)] = scan(runner, stage).pairs
        survivor, loser = (store.canonical_ids("Account", "crm", ["A001", "A002"])[k]
                           for k in ("A001", "A002"))
    assert not queued_before and pair.details["origin"] == "scan"

    with TestClient(create_app(state_url, project)) as client:
        page = client.get(f"/duplicates/{pair.id}")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        golden = dict(re.findall(r'name="(golden\.[^"]+)" value="([^"]*)"', page.text))
        done = client.post(f"/duplicates/{pair.id}/decide", data={
            **{k: html.unescape(v) for k, v in golden.items()}, "golden.name": LEGAL,
            "csrf": token, "decision": "accept"})
        assert done.status_code == 200, done.text
        assert "Merged:" in done.text and "archived" in done.text

    rows = {r["crm_ref"]: r for r in customer_rows(tmp_path)}
    assert (rows[survivor]["active"], rows[loser]["active"]) == (1, 0)
    assert (rows[survivor]["name"], rows[survivor]["phone"]) == (LEGAL, "+49301234567")
    with StateStore.open(state_url) as store:
        decided = store.get_dedupe_pair(pair.id)
        assert decided.status == "accepted"
        assert decided.details["applied"]["archived_target_id"] == str(rows[loser]["id"])
        assert store.canonical_ids("Account", "crm", ["A001", "A002"]) == {
            "A001": survivor, "A002": survivor}

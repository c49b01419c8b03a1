"""``crm2erp dedupe scan``: duplicates synced before matching was switched on, merged
in the target when a steward accepts them. Real processes on the demo-style project."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from tests.cli.test_dedupe_cli import crm2erp
from tests.quality.dedupe_project import (
    T0,
    account,
    synced_before_matching,
    update_crm_account,
)
from tests.quality.dedupe_project import customer_rows as erp_customers

DUPLICATES = [
    account(1, "Müller Maschinenbau GmbH", email="info@mueller-mb.example", vat="DE123456789"),
    account(2, "Mueller Maschinenbau", email="info@mueller-mb.example",
            phone="+49 30 1234567"),
    account(3, "Zeta Logistics", email="hello@zeta.example", city="Hamburg"),
]


def _project(tmp_path, monkeypatch, *, archive: bool = True):
    """Two duplicate CRM accounts and a third, synced with the flow's dedupe section off."""
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))
    project = synced_before_matching(tmp_path, DUPLICATES, archive=archive,
                                     write_back=True)
    assert len(erp_customers(tmp_path)) == 3                  # the duplicates went in twice
    return project, ["-p", str(project), "--state", f"sqlite:///{tmp_path / 'state.db'}"]


def crm_numbers(tmp_path) -> dict[str, str]:
    """CRM account id -> the ERP customer number written back onto it."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, erp_customer_no FROM accounts")).all()
    engine.dispose()
    return {k: v for k, v in rows}


def _xref(tmp_path, system: str) -> dict[str, str]:
    from crm2erp.store.tables import names, xref  # its types give the canonical ids as text

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(xref.c.external_id, xref.c.canonical_id)
                            .join(names, names.c.id == xref.c.system_id)
                            .where(names.c.name == system)).all()
    engine.dispose()
    return dict(rows)


def test_scan_queues_synced_duplicates_once_and_accepting_merges_them(tmp_path, monkeypatch):
    project, state = _project(tmp_path, monkeypatch)
    before = {c["crm_ref"]: c for c in erp_customers(tmp_path)}
    crm = _xref(tmp_path, "crm")
    survivor, loser = crm["A001"], crm["A002"]

    scanned = crm2erp(*state, "dedupe", "scan", "accounts", cwd=tmp_path)
    assert scanned.returncode == 0, scanned.stderr
    assert "1 possible duplicate pair(s) among 3 synced records, 1 new" in scanned.stdout
    assert "Müller Maschinenbau GmbH" in scanned.stdout and "Zeta" not in scanned.stdout
    again = crm2erp(*state, "dedupe", "scan", "accounts", "--json", cwd=tmp_path)
    found = json.loads(again.stdout)
    assert (found["records"], found["new"]) == (3, 0)         # not queued twice
    [pair] = found["pairs"]
    assert pair["status"] == "pending" and pair["match_probability"] > 0.99
    assert {pair["left_id"], pair["right_id"]} == {survivor, loser}
    listed = json.loads(crm2erp(*state, "dedupe", "list", "--json", cwd=tmp_path).stdout)
    assert [p["id"] for p in listed["pairs"]] == [pair["id"]]
    assert erp_customers(tmp_path) == list(before.values())  # the scan merged nothing

    decided = crm2erp(*state, "dedupe", "decide", str(pair["id"]), "accept", "--by", "ana",
                      cwd=tmp_path)
    assert decided.returncode == 0, decided.stdout + decided.stderr
    assert f"pair #{pair['id']} merged" in decided.stdout
    undo = crm2erp(*state, "dedupe", "decide", str(pair["id"]), "reject", cwd=tmp_path)
    assert undo.returncode == 2 and "cannot undo it" in undo.stderr

    after = {c["crm_ref"]: c for c in erp_customers(tmp_path)}
    assert len(after) == 3
    kept, archived = after[survivor], after[loser]
    assert kept["active"] == 1 and archived["active"] == 0
    # the golden record: name source_priority (both CRM: the newer), the only phone,
    # the only VAT id, e-mail most recent
    assert (kept["name"], kept["phone"], kept["vat"], kept["email"]) == (
        "Mueller Maschinenbau", "+49301234567", "DE123456789", "info@mueller-mb.example")
    assert archived["name"] == before[loser]["name"]          # archived as it was
    crm = _xref(tmp_path, "crm")
    assert crm["A001"] == crm["A002"] == survivor             # the loser's source id moved
    erp = _xref(tmp_path, "erp")
    assert erp[str(kept["id"])] == survivor
    # the flow's write-back put the survivor's ERP id on both CRM accounts
    assert crm_numbers(tmp_path) == {"A001": str(kept["id"]), "A002": str(kept["id"]),
                                     "A003": str(after[crm["A003"]]["id"])}

    # a later change of the loser's CRM record updates the survivor, no new row
    update_crm_account(tmp_path, "A002", email="sales@mueller-mb.example",
                       updated_at=T0 + dt.timedelta(hours=2))
    synced = crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    final = {c["crm_ref"]: c for c in erp_customers(tmp_path)}
    assert len(final) == 3
    assert final[survivor]["email"] == "sales@mueller-mb.example"
    assert final[survivor]["name"] == "Mueller Maschinenbau" and final[survivor]["active"] == 1
    assert final[loser] == archived                           # nothing writes to it again
    rescanned = json.loads(crm2erp(*state, "dedupe", "scan", "accounts", "--json",
                                   cwd=tmp_path).stdout)
    assert (rescanned["records"], rescanned["pairs"]) == (2, [])


def test_accept_without_archive_setting_is_refused_and_changes_nothing(tmp_path, monkeypatch):
    _, state = _project(tmp_path, monkeypatch, archive=False)
    before = erp_customers(tmp_path)
    crm = _xref(tmp_path, "crm")
    found = json.loads(crm2erp(*state, "dedupe", "scan", "accounts", "--json",
                               cwd=tmp_path).stdout)
    [pair] = found["pairs"]

    decided = crm2erp(*state, "dedupe", "decide", str(pair["id"]), "accept", cwd=tmp_path)
    assert decided.returncode == 2, decided.stdout + decided.stderr
    assert "has no archive setting" in decided.stderr
    assert "'archive: {column: ..., value: ...}'" in decided.stderr
    assert "nothing was changed" in decided.stderr
    assert erp_customers(tmp_path) == before
    assert _xref(tmp_path, "crm") == crm


def test_reject_keeps_both_and_a_rescan_does_not_ask_again(tmp_path, monkeypatch):
    _, state = _project(tmp_path, monkeypatch)
    [pair] = json.loads(crm2erp(*state, "dedupe", "scan", "accounts", "--json",
                                cwd=tmp_path).stdout)["pairs"]
    decided = crm2erp(*state, "dedupe", "decide", str(pair["id"]), "reject", cwd=tmp_path)
    assert decided.returncode == 0 and "both records stay as they are" in decided.stdout
    rescanned = json.loads(crm2erp(*state, "dedupe", "scan", "accounts", "--json",
                                   cwd=tmp_path).stdout)
    assert rescanned["pairs"] == []
    assert sorted(c.get("active") for c in erp_customers(tmp_path)) == [1, 1, 1]


def test_accepting_in_the_interactive_review_merges_at_once(tmp_path, monkeypatch):
    _, state = _project(tmp_path, monkeypatch)
    assert crm2erp(*state, "dedupe", "scan", "accounts", cwd=tmp_path).returncode == 0
    reviewed = crm2erp(*state, "dedupe", "review", "--by", "ben", cwd=tmp_path, stdin="a\n")
    assert reviewed.returncode == 0, reviewed.stdout + reviewed.stderr
    assert "1 accepted, 0 rejected, 0 skipped" in reviewed.stdout
    assert "merged in flow accounts" in reviewed.stdout
    crm = _xref(tmp_path, "crm")
    rows = {r["crm_ref"]: r for r in erp_customers(tmp_path)}
    assert crm["A001"] == crm["A002"]
    assert sorted((ref == crm["A001"], r["active"]) for ref, r in rows.items()) == [
        (False, 0), (False, 1), (True, 1)]                     # loser archived, Zeta kept

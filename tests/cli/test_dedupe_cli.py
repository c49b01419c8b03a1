"""``crm2erp dedupe`` as a steward runs it: the command (run in this process) on a real
project."""

from __future__ import annotations

import os

from tests.clirunner import run
from tests.quality.dedupe_project import account, erp_customers, make_project


def crm2erp(*args, cwd, stdin=None):
    return run(args, cwd=cwd, input=stdin,
               env={**os.environ, "COLUMNS": "200", "CRM2ERP_DEMO_DIR": str(cwd)})


def _setup(tmp_path, *rows):
    project = make_project(tmp_path, list(rows))
    return ["-p", str(project), "--state", f"sqlite:///{tmp_path / 'state.db'}"]


def _borderline_rows():
    # similar names, same e-mail domain, no city: between the thresholds
    return [account(1, "Nordwind Handel GmbH", email="einkauf@nordwind.example", city=None),
            account(2, "Nordwind Handels AG", email="info@nordwind.example", city=None)]


def test_list_then_decide_reject_then_sync_loads_both(tmp_path):
    state = _setup(tmp_path, *_borderline_rows())
    first = crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)
    assert first.returncode == 1, first.stderr          # one record parked for review

    listed = crm2erp(*state, "dedupe", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "Nordwind Handel GmbH" in listed.stdout and "Nordwind Handels AG" in listed.stdout
    assert "pending" in listed.stdout
    shown = crm2erp(*state, "dedupe", "show", "1", cwd=tmp_path)
    assert shown.returncode == 0 and "p=0." in shown.stdout and "email" in shown.stdout
    assert "same domain" in shown.stdout

    decided = crm2erp(*state, "dedupe", "decide", "1", "reject", "--by", "ana", cwd=tmp_path)
    assert decided.returncode == 0 and "rejected by ana" in decided.stdout
    assert "no pending pairs" in crm2erp(*state, "dedupe", "list", cwd=tmp_path).stdout
    rejected = crm2erp(*state, "dedupe", "list", "--status", "rejected", cwd=tmp_path)
    assert "ana" in rejected.stdout

    again = crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(c["name"] for c in erp_customers(tmp_path)) == [
        "Nordwind Handel GmbH", "Nordwind Handels AG"]


def test_interactive_review_accepts_and_bad_input_exits_2(tmp_path):
    state = _setup(tmp_path, *_borderline_rows())
    crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)

    # a mistyped key is asked again, never counted as a skip
    reviewed = crm2erp(*state, "dedupe", "review", "--by", "ben", cwd=tmp_path,
                       stdin="x\nA\n")
    assert reviewed.returncode == 0, reviewed.stderr
    assert "'x' is not one of" in reviewed.stdout + reviewed.stderr
    assert "1 accepted, 0 rejected, 0 skipped" in reviewed.stdout
    assert "Nordwind Handels AG" in reviewed.stdout       # the pair was shown side by side
    accepted = crm2erp(*state, "dedupe", "list", "--status", "accepted", cwd=tmp_path)
    assert "ben" in accepted.stdout

    crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)
    assert len(erp_customers(tmp_path)) == 1                # merged into one customer

    wrong = crm2erp(*state, "dedupe", "decide", "1", "maybe", cwd=tmp_path)
    assert wrong.returncode == 2 and "accept or reject" in wrong.stderr
    missing = crm2erp(*state, "dedupe", "decide", "99", "accept", cwd=tmp_path)
    assert missing.returncode == 2 and "#99" in missing.stderr


def test_list_json_gives_the_pending_pair_with_both_records(tmp_path):
    import json

    state = _setup(tmp_path, *_borderline_rows())
    assert crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path).returncode == 1
    listed = crm2erp(*state, "dedupe", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    (pair,) = json.loads(listed.stdout)["pairs"]
    assert pair["status"] == "pending" and pair["flow"] == "accounts"
    assert {pair["left_label"], pair["right_label"]} == {"Nordwind Handel GmbH",
                                                         "Nordwind Handels AG"}
    assert 0 < pair["match_probability"] < 1 and pair["decided_by"] is None

"""Hostile text through matching: ``crm2erp dedupe scan``, accepting a merge, and a sync.

Names with HTML and rich markup are data: stored as they are, shown as text (never
rendered), and the merged ERP row read back equals the golden record. Names that
cannot be a canonical account (empty, whitespace only) become dead letters naming
the source record and the reason; a 1 MB name is matched and stored whole. No
traceback anywhere. Real processes on the demo-style project (SQLite systems).
"""

from __future__ import annotations

import json

from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.store import StateStore
from tests.cli.test_dedupe_cli import crm2erp
from tests.quality.dedupe_project import account, make_project, synced_before_matching
from tests.quality.dedupe_project import customer_rows as erp_customers

XSS = "<img src=x onerror=alert(1)>"
MARKUP = "[link=x]y[/link] [bold red]"
HOSTILE = [
    account(1, f"{XSS} {MARKUP} Werke GmbH", email="info@xss.example", vat="DE123456789"),
    account(2, f"{XSS} {MARKUP} Werke", email="info@xss.example", phone="+49 30 1234567"),
    account(3, "Zeta Logistics", email="hello@zeta.example", city="Hamburg"),
]


def test_markup_names_are_scanned_shown_as_text_and_merged_as_the_golden_record(
        tmp_path, monkeypatch):
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))
    project = synced_before_matching(tmp_path, HOSTILE, write_back=True)
    state = ["-p", str(project), "--state", f"sqlite:///{tmp_path / 'state.db'}"]
    before = {c["crm_ref"]: c for c in erp_customers(tmp_path)}
    assert sorted(c["name"] for c in before.values()) == sorted(
        a["company_name"] for a in HOSTILE)                    # stored as they came

    scanned = crm2erp(*state, "dedupe", "scan", "accounts", cwd=tmp_path)
    assert scanned.returncode == 0 and "Traceback" not in scanned.stderr, scanned.stderr
    assert "1 possible duplicate pair(s) among 3 synced records" in scanned.stdout
    assert XSS in scanned.stdout and MARKUP in scanned.stdout   # shown, not rendered
    found = json.loads(crm2erp(*state, "dedupe", "scan", "accounts", "--json",
                               cwd=tmp_path).stdout)
    [pair] = found["pairs"]
    assert {pair["left_label"], pair["right_label"]} == {
        HOSTILE[0]["company_name"], HOSTILE[1]["company_name"]}

    shown = crm2erp(*state, "dedupe", "show", str(pair["id"]), cwd=tmp_path)
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    for piece in (XSS, "[link=x]y[/link]", "[bold red]"):   # wrapped in a table cell
        assert piece in shown.stdout

    decided = crm2erp(*state, "dedupe", "decide", str(pair["id"]), "accept", cwd=tmp_path)
    assert decided.returncode == 0, decided.stdout + decided.stderr
    after = {c["crm_ref"]: c for c in erp_customers(tmp_path)}
    kept = after[pair["left_id"]] if after[pair["left_id"]]["active"] else after[
        pair["right_id"]]
    # the golden record: name source_priority (both CRM: the newer), the only phone,
    # the only VAT id, the shared e-mail, byte for byte
    assert (kept["name"], kept["phone"], kept["vat"], kept["email"]) == (
        HOSTILE[1]["company_name"], "+49301234567", "DE123456789", "info@xss.example")
    assert sorted(c["active"] for c in after.values()) == [0, 1, 1]


def test_unusable_names_become_dead_letters_and_a_huge_name_is_matched_whole(
        tmp_path, monkeypatch):
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))
    huge = "Gross " + "x" * 1_000_000
    accounts = [account(1, f"{XSS} Werke GmbH", email="info@xss.example"),
                account(2, f"{XSS} Werke", email="info@xss.example"),
                account(3, "   ", email="blank@x.example"),
                account(4, "", email="empty@x.example"),
                account(5, huge, email="big@x.example"),
                account(6, huge + " GmbH", email="big@x.example"),
                account(7, MARKUP, email="y@link.example")]
    project = make_project(tmp_path, accounts)             # matching on
    with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as store, \
            Engine(load_project(project), store) as engine:
        result = engine.run("accounts")
        dead = {d.source_key: (d.stage, d.error) for d in store.dead_letters("accounts")}
    assert result.counts["failed"] == 2 and result.counts["read"] == 7
    assert dead == {"A003": ("validate", "name: String should have at least 1 character"),
                    "A004": ("validate", "name: String should have at least 1 character")}
    names = sorted(c["name"] for c in erp_customers(tmp_path))
    # the XSS pair and the huge pair merged (same name, same e-mail): the newer name
    assert names == sorted([f"{XSS} Werke", huge + " GmbH", MARKUP])


CSV_HEADER = (b"id,company_name,account_type,email,phone,street,zip,city,country,vat_id,"
              b"currency,segment,erp_customer_no,updated_at\n")


def _csv_row(key: str, name: bytes, email: str, minute: int) -> bytes:
    return (key.encode() + b',"' + name + b'",Customer,' + email.encode() +
            b",,,,Berlin,Germany,,EUR,,,2026-05-04T09:%02d:00\n" % minute)


def test_a_csv_source_with_broken_bytes_a_huge_field_and_repeated_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))
    project = make_project(tmp_path, [])
    (tmp_path / "crm_files").mkdir()
    (tmp_path / "crm_files" / "accounts.csv").write_bytes(CSV_HEADER + b"".join([
        _csv_row("A001", XSS.encode() + b" Werke GmbH", "info@xss.example", 1),
        _csv_row("A002", XSS.encode() + b" Werke", "info@xss.example", 2),
        _csv_row("A003", b"Kaputt \xff\xfe GmbH", "broken@x.example", 3),     # not UTF-8
        _csv_row("A004", b"Riesig " + b"x" * 1_000_000, "big@x.example", 4),  # > limit
        _csv_row("A005", b"Erste Fassung GmbH", "first@dup.example", 5),
        _csv_row("A005", b"Zweite Fassung GmbH", "second@dup.example", 6),     # same key
    ]))
    connections = project / "connections.yaml"
    crm = connections.read_text().split("  crm:\n")[1].split("  erp:\n")[0]
    connections.write_text(connections.read_text().replace(crm, (
        "    type: file\n    path: ${CRM2ERP_DEMO_DIR}/crm_files\n    max_field_size: 100000\n"
        "    streams:\n      accounts: {file: accounts.csv, key: id, cursor: updated_at}\n")))
    state = ["-p", str(project), "--state", f"sqlite:///{tmp_path / 'state.db'}"]

    synced = crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)
    assert "Traceback" not in synced.stdout + synced.stderr, synced.stderr
    with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
        dead = {d.source_key: d.error for d in store.dead_letters("accounts")}
    assert sorted(dead) == ["A003", "A004", "A005"], dead
    assert "bytes not valid utf-8" in dead["A003"] and "accounts.csv:4" in dead["A003"]
    assert "'company_name' has 1000007 characters" in dead["A004"]
    assert "is on more than one row of accounts.csv (first on line 6)" in dead["A005"]
    customers = {c["name"]: c for c in erp_customers(tmp_path)}
    # the XSS pair merged (the newer name); neither row of the repeated key is synced
    assert sorted(customers) == [f"{XSS} Werke"]

    scanned = crm2erp(*state, "dedupe", "scan", "accounts", "--json", cwd=tmp_path)
    assert scanned.returncode == 0 and "Traceback" not in scanned.stderr, scanned.stderr
    assert json.loads(scanned.stdout)["records"] == 1   # the merged XSS pair

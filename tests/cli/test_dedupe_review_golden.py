"""An identifier conflict goes to review; the review shows the golden record (issue 13)."""

from __future__ import annotations

from crm2erp.store import StateStore
from tests.cli.test_dedupe_cli import crm2erp
from tests.quality.dedupe_project import account, add_erp_customer, erp_customers, make_project


def test_a_clear_match_with_another_vat_id_waits_for_review_showing_the_golden_record(
        tmp_path):
    # by score a certain match (same name, address and city), but the CRM holds a
    # placeholder VAT id where the ERP has the real one
    project = make_project(tmp_path, [
        account(1, "Nordwind Handel GmbH", email="info@nordwind.example", vat="DE000000000",
                phone="+49 40 7654321")], target=True)
    add_erp_customer(tmp_path, crm_ref="ERP-0007", name="Nordwind Handel GmbH",
                     kind="customer", email="info@nordwind.example", vat="DE811111111",
                     city="Berlin", country="DE", currency="EUR")
    state = ["-p", str(project), "--state", f"sqlite:///{tmp_path / 'state.db'}"]

    first = crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)

    assert first.returncode == 1, first.stdout + first.stderr      # parked, not merged
    [customer] = erp_customers(tmp_path)
    assert (customer["vat"], customer["phone"]) == ("DE811111111", None)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        [pair] = store.dedupe_pairs(status="pending")
        [letter] = store.dead_letters(flow="accounts", status="parked")
    finally:
        store.close()
    assert pair.reason == "identifier conflict: tax_id" and pair.match_probability > 0.99
    assert "identifier conflict: tax_id" in letter.error

    shown = crm2erp(*state, "dedupe", "show", str(pair.id), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "if accepted" in shown.stdout
    assert "identifiers differ: tax_id DE000000000 / DE811111111 (accepting keeps " \
           "'DE811111111')" in " ".join(shown.stdout.split())
    phone_row = next(line for line in shown.stdout.splitlines() if line.startswith("│ phone"))
    assert phone_row.count("+49407654321") == 2      # the CRM's phone, and kept when accepted

    decided = crm2erp(*state, "dedupe", "decide", str(pair.id), "accept", "--by", "ana",
                      cwd=tmp_path)
    assert decided.returncode == 0, decided.stderr
    second = crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    [customer] = erp_customers(tmp_path)
    assert (customer["crm_ref"], customer["vat"]) == ("ERP-0007", "DE811111111")
    assert customer["phone"].replace(" ", "") == "+49407654321"

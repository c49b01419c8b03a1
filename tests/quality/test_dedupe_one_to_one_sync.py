"""``link: one_to_one`` through a real sync: CRM accounts against existing ERP customers.

Two new CRM accounts both resemble one ERP customer the integration never wrote,
but not each other (each shares a different identifier with it). With
``link: many`` both merge into that customer; with ``one_to_one`` the
customer gets only the better CRM account and the other becomes a customer
of its own. Evidence: the ERP table read back, and the cross-reference.

Weights of the configuration (log2 m/u), prior log2(0.01/0.99) = -6.63, merge
at a total of 13.26 (p >= 0.99), review from 6.63 (p >= 0.5):
name exact +9.45, else -4.30; e-mail exact +9.81, else -3.32; phone exact +9.81,
else -3.32; city exact +4.17, else -3.25; a missing value 0.
A001 vs the customer: name, e-mail and city agree, phone differs: 20.1 (merge).
A002 vs the customer: name and phone agree, e-mail differs, no city: 15.9 (merge).
A001 vs A002: name agrees, e-mail and phone differ, no city: 2.8 (distinct).
"""

from __future__ import annotations

import pytest

from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.store import StateStore
from tests.quality.dedupe_project import (
    account,
    add_crm_accounts,
    add_erp_customer,
    erp_customers,
    make_project,
)

MATCH = """\
entity: account
blocking:
  - [{field: name, transform: [company, first:4]}]
comparisons:
  - {field: name, method: exact, transform: company, m: [0.7, 0.3], u: [0.001, 0.999]}
  - {field: email, method: exact, m: [0.9, 0.1], u: [0.001, 0.999]}
  - {field: phone, method: exact, m: [0.9, 0.1], u: [0.001, 0.999]}
  - {field: billing_address.city, name: city, method: exact, transform: name,
     m: [0.9, 0.1], u: [0.05, 0.95]}
lambda: 0.01
thresholds: {upper: 0.99, lower: 0.5}
survivorship:
  default: most_complete
  source_priority: [erp, crm]
  fields: {name: source_priority, email: most_recent, phone: most_recent}
"""


A001 = account(1, "Nordwind GmbH", email="info@nordwind.example", phone="+49 40 9999999",
               city="Berlin")
A002 = account(2, "Nordwind GmbH", email="einkauf@other.example", phone="+49 30 1111111",
               city=None)


def _project(folder, monkeypatch, link: str, accounts: list[dict], batch_size: int = 100):
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(folder))
    project = make_project(folder, accounts, target=True)
    (project / "match.yaml").write_text(MATCH)
    flow = project / "accounts.flow.yaml"
    flow.write_text(flow.read_text().replace("batch_size: 100", f"batch_size: {batch_size}")
                    + f"  link: {link}\n")
    add_erp_customer(folder, crm_ref="ERP-0001", name="Nordwind GmbH", kind="customer",
                     email="info@nordwind.example", phone="+49301111111", city="Berlin",
                     country="DE", currency="EUR")
    return project


def _run(folder, project):
    store = StateStore.open(f"sqlite:///{folder / 'state.db'}")
    try:
        with Engine(load_project(project), store) as engine:
            result = engine.run("accounts")
        ids = store.canonical_ids("Account", "crm", ["A001", "A002"])
        pairs = store.dedupe_pairs(status=None)
    finally:
        store.close()
    return result, ids, pairs, erp_customers(folder)


def _sync_once(folder, monkeypatch, link: str, batch_size: int = 100):
    return _run(folder, _project(folder, monkeypatch, link, [A001, A002], batch_size))


def test_many_merges_both_crm_accounts_into_the_one_erp_customer(tmp_path, monkeypatch):
    result, ids, _, customers = _sync_once(tmp_path, monkeypatch, "many")
    assert result.counts["failed"] == 0
    assert [c["crm_ref"] for c in customers] == ["ERP-0001"]
    assert ids == {"A001": "ERP-0001", "A002": "ERP-0001"}


def test_one_to_one_gives_the_erp_customer_only_its_best_crm_account(tmp_path, monkeypatch):
    result, ids, pairs, customers = _sync_once(tmp_path, monkeypatch, "one_to_one")
    assert result.counts["failed"] == 0 and result.counts["parked"] == 0
    assert ids["A001"] == "ERP-0001"                      # the best score wins the customer
    assert ids["A002"] != "ERP-0001"                      # the other creates its own
    by_ref = {c["crm_ref"]: c for c in customers}
    assert sorted(by_ref) == sorted(["ERP-0001", ids["A002"]])
    kept = by_ref["ERP-0001"]
    assert (kept["name"], kept["email"], kept["phone"]) == (
        "Nordwind GmbH", "info@nordwind.example", "+49409999999")   # A001's e-mail and phone
    created = by_ref[ids["A002"]]
    assert (created["email"], created["phone"]) == ("einkauf@other.example", "+49301111111")
    # one pair merged, A001 with the customer; A002's pair lost and is not queued
    [pair] = pairs
    assert pair.status == "merged" and pair.match_probability > 0.99
    assert {pair.details[side]["source_key"] for side in ("left", "right")} == {
        "A001", str(kept["id"])}                     # the new record, the ERP row


# A later CRM account that resembles the customer *after* A001 merged into it: same name and
# phone as the merged record, another e-mail, no city: 9.45 + 9.81 - 3.32 - 6.63 = 9.3 bits
# (p = 0.998, a merge under link: many)
A003 = account(3, "Nordwind GmbH", email="einkauf@other.example", phone="+49 40 9999999",
               city=None)


def _apart(ids, customers):
    """A001 holds the ERP customer; A003 was created as a customer of its own."""
    assert ids["A001"] == "ERP-0001" and ids["A003"] not in (None, "ERP-0001")
    by_ref = {c["crm_ref"]: c for c in customers}
    assert sorted(by_ref) == sorted(["ERP-0001", ids["A003"]])
    assert by_ref["ERP-0001"]["email"] == "info@nordwind.example"
    assert (by_ref[ids["A003"]]["name"], by_ref[ids["A003"]]["email"]) == (
        "Nordwind GmbH", "einkauf@other.example")


def _ids(folder):
    store = StateStore.open(f"sqlite:///{folder / 'state.db'}")
    try:
        return store.canonical_ids("Account", "crm", ["A001", "A003"])
    finally:
        store.close()


@pytest.mark.parametrize("link", ["many", "one_to_one"])
def test_one_to_one_holds_across_batches(tmp_path, monkeypatch, link):
    # batch 1: A001 takes the ERP customer; batch 2: A003 finds it linked to A001 (xref)
    project = _project(tmp_path, monkeypatch, link, [A001, A003], batch_size=1)
    result, _, pairs, customers = _run(tmp_path, project)
    assert result.counts["failed"] == 0 and result.counts["parked"] == 0
    ids = _ids(tmp_path)
    if link == "many":   # the later account joins the taken customer
        assert ids == {"A001": "ERP-0001", "A003": "ERP-0001"}
        assert [c["crm_ref"] for c in customers] == ["ERP-0001"]
        assert [p.status for p in pairs] == ["merged", "merged"]
        return
    _apart(ids, customers)
    assert [(p.status, {p.details[s]["source_key"] for s in ("left", "right")})
            for p in pairs] == [("merged", {"A001", str(customers[0]["id"])})]


@pytest.mark.parametrize("link", ["many", "one_to_one"])
def test_one_to_one_holds_across_runs(tmp_path, monkeypatch, link):
    project = _project(tmp_path, monkeypatch, link, [A001])
    first, _, _, _ = _run(tmp_path, project)
    assert first.counts["failed"] == 0 and _ids(tmp_path) == {"A001": "ERP-0001"}
    add_crm_accounts(tmp_path, A003)
    second, _, pairs, customers = _run(tmp_path, project)
    assert second.counts["failed"] == 0 and second.counts["parked"] == 0
    ids = _ids(tmp_path)
    if link == "many":
        assert ids == {"A001": "ERP-0001", "A003": "ERP-0001"}
        assert [c["crm_ref"] for c in customers] == ["ERP-0001"]
        return
    _apart(ids, customers)
    assert [p.status for p in pairs] == ["merged"]

"""The dedupe stage in the real engine: CRM and ERP as SQLite files, real state store."""

from __future__ import annotations

import datetime as dt

import pytest

from crm2erp.engine import Engine
from crm2erp.engine.resolver import canonical_id_for
from crm2erp.mapping import load_project
from crm2erp.store import StateStore
from crm2erp.store.dedupe import DedupePair, pair_key
from tests.quality.dedupe_project import (
    T0,
    account,
    add_crm_accounts,
    add_erp_customer,
    erp_customers,
    make_project,
    update_crm_account,
)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def sync(folder):
    """``sync(project)``: one incremental run of the accounts flow with a fresh engine."""
    opened = []

    def run(project):
        store = StateStore.open(f"sqlite:///{folder / 'state.db'}")
        engine = Engine(load_project(project), store)
        opened.append((engine, store))
        return engine.run("accounts"), store

    yield run
    for engine, store in opened:
        engine.close()
        store.close()


def test_near_duplicates_in_one_batch_become_one_erp_customer(folder, sync):
    project = make_project(folder, [
        account(1, "Müller Maschinenbau GmbH", email="info@mueller-mb.example"),
        account(2, "Mueller Maschinenbau", email="info@mueller-mb.example",
                phone="+49 30 1234567"),
        account(3, "Zeta Logistics", email="hello@zeta.example", city="Hamburg"),
    ])
    result, store = sync(project)

    customers = erp_customers(folder)
    # name: source_priority, both from the CRM -> the more recent record's
    assert sorted(c["name"] for c in customers) == ["Mueller Maschinenbau", "Zeta Logistics"]
    assert result.counts["failed"] == 0
    ids = store.canonical_ids("Account", "crm", ["A001", "A002", "A003"])
    assert ids["A001"] == ids["A002"] != ids["A003"]
    merged = next(c for c in customers if c["name"].startswith("Mueller"))
    assert merged["crm_ref"] == ids["A001"]       # the oldest member's canonical id
    assert merged["phone"] == "+49301234567"      # golden record: the only phone survives
    members = store.dedupe_members("Account", [ids["A001"]])[ids["A001"]]
    assert sorted(m.source_key for m in members) == ["A001", "A002"]
    [pair] = store.dedupe_pairs(status="merged")
    assert pair.match_probability > 0.99 and pair.reason == "score"

    # the next run finds nothing new and writes nothing
    again, _ = sync(project)
    assert again.counts["created"] == again.counts["updated"] == 0
    assert len(erp_customers(folder)) == 2


def test_new_crm_account_updates_the_matching_erp_customer(folder, sync):
    project = make_project(folder, [
        account(1, "ACME Trading", email="info@acme.example", phone="+49 30 5550001"),
    ], target=True)
    add_erp_customer(folder, crm_ref="ERP-0042", name="Acme Trading GmbH", kind="customer",
                     email="billing@acme.example", city="Berlin", country="DE",
                     currency="EUR")

    result, store = sync(project)

    [customer] = erp_customers(folder)
    assert result.counts["updated"] == 1 and result.counts["created"] == 0
    assert customer["crm_ref"] == "ERP-0042"
    assert customer["name"] == "Acme Trading GmbH"        # source_priority: erp first
    assert customer["email"] == "info@acme.example"       # most_recent: the CRM's
    assert customer["phone"] == "+49305550001"
    assert store.canonical_ids("Account", "crm", ["A001"]) == {"A001": "ERP-0042"}

    # provenance of every surviving value
    provenance = store.dedupe_provenance("Account", "ERP-0042")
    assert (provenance["name"].system, provenance["name"].member_id) == ("erp", "ERP-0042")
    assert (provenance["email"].system, provenance["email"].source_key) == ("crm", "A001")
    assert provenance["email"].rule == "most_recent"
    assert provenance["phone"].source_key == "A001"

    # a later CRM edit keeps the survivorship: the name stays the ERP's
    update_crm_account(folder, "A001", phone="+49 30 5550002",
                       updated_at=T0 + dt.timedelta(hours=1))
    sync(project)
    [customer] = erp_customers(folder)
    assert (customer["name"], customer["phone"]) == ("Acme Trading GmbH", "+49305550002")


def _borderline(folder):
    # similar names, same e-mail domain, no city: p ~ 0.91, between the thresholds
    return make_project(folder, [
        account(1, "Nordwind Handel GmbH", email="einkauf@nordwind.example", city=None),
        account(2, "Nordwind Handels AG", email="info@nordwind.example", city=None),
    ])


@pytest.mark.parametrize("decision", ["rejected", "accepted"])
def test_borderline_pair_is_parked_until_a_steward_decides(folder, sync, decision):
    project = _borderline(folder)
    first, store = sync(project)

    assert [c["name"] for c in erp_customers(folder)] == ["Nordwind Handel GmbH"]
    [parked] = store.dead_letters(flow="accounts", status="parked")
    assert parked.source_key == "A002" and parked.stage == "parked"
    assert "possible duplicate of 'Nordwind Handel GmbH'" in parked.error
    assert "awaiting review" in parked.error
    [pair] = store.dedupe_pairs(status="pending")
    assert 0.5 <= pair.match_probability < 0.99
    assert {f["comparison"]: f["label"] for f in pair.details["fields"]}["city"] == "null"

    # no decision yet: still parked, still one queue entry
    sync(project)
    assert len(store.dedupe_pairs()) == 1
    assert [d.source_key for d in store.dead_letters(flow="accounts", status="parked")] == [
        "A002"]

    store.decide_dedupe_pair(pair.id, decision, by="steward@example")
    sync(project)
    names = sorted(c["name"] for c in erp_customers(folder))
    if decision == "rejected":
        assert names == ["Nordwind Handel GmbH", "Nordwind Handels AG"]
    else:
        assert names == ["Nordwind Handels AG"]   # one customer, the newer name survives
        ids = store.canonical_ids("Account", "crm", ["A001", "A002"])
        assert ids["A001"] == ids["A002"]
    assert store.dead_letters(flow="accounts", status="parked") == []
    decided = store.get_dedupe_pair(pair.id)
    assert (decided.status, decided.decided_by) == (decision, "steward@example")

    # the decision is honoured in later runs without asking again
    sync(project)
    assert store.dedupe_pairs(status="pending") == []
    assert len(store.dedupe_pairs()) == 1
    assert sorted(c["name"] for c in erp_customers(folder)) == names


def test_pass_mode_loads_both_and_queues_the_pair(folder, sync):
    project = make_project(folder, [
        account(1, "Nordwind Handel GmbH", email="einkauf@nordwind.example", city=None),
        account(2, "Nordwind Handels AG", email="info@nordwind.example", city=None),
    ], review="pass")
    result, store = sync(project)
    assert len(erp_customers(folder)) == 2 and result.counts["failed"] == 0
    assert len(store.dedupe_pairs(status="pending")) == 1


def test_same_tax_id_links_despite_a_low_score(folder, sync):
    project = make_project(folder, [
        account(1, "Kappa Systems", email="a@kappa.example", vat="DE 123 456 789"),
        account(2, "Omega Holding", email="b@omega.example", city="Munich",
                vat="de123456789"),
    ])
    result, store = sync(project)

    assert len(erp_customers(folder)) == 1
    [pair] = store.dedupe_pairs()
    assert pair.reason == "rule:tax_id" and pair.status == "merged"
    assert pair.match_probability < 0.01
    ids = store.canonical_ids("Account", "crm", ["A001", "A002"])
    assert ids["A001"] == ids["A002"]


def test_a_rejected_pair_is_never_merged_even_by_rule(folder, sync):
    project = make_project(folder, [
        account(1, "Kappa Systems", email="a@kappa.example", vat="DE123456789"),
    ])
    _, store = sync(project)
    cid = store.canonical_ids("Account", "crm", ["A001"])["A001"]
    left, right = pair_key(cid, canonical_id_for("Account", "crm", "A002"))
    ids = store.save_dedupe_pairs([DedupePair("Account", left, right, "accounts", "pending",
                                              "rule:tax_id", 1.0, 20.0)])
    store.decide_dedupe_pair(ids[(left, right)], "rejected", by="steward")

    add_crm_accounts(folder, account(2, "Kappa Systems AG", email="a@kappa.example",
                                     vat="DE123456789"))
    sync(project)
    assert len(erp_customers(folder)) == 2
    assert store.get_dedupe_pair(ids[(left, right)]).status == "rejected"


def test_accepted_pair_keeps_the_erp_vat_id_and_name(folder, sync, caplog):
    """A newer CRM record with a typo'd name and a placeholder VAT id does not overwrite them."""
    project = make_project(folder, [
        account(1, "Nordwind Handels AG", email="info@nordwind.example", city=None,
                vat="DE000000000"),
    ], target=True)
    add_erp_customer(folder, crm_ref="ERP-0007", name="Nordwind Handel GmbH", kind="customer",
                     email="einkauf@nordwind.example", vat="DE811111111", country="DE",
                     currency="EUR")
    first, store = sync(project)
    [pair] = store.dedupe_pairs(status="pending")
    assert [c["vat"] for c in erp_customers(folder)] == ["DE811111111"]   # A001 parked

    store.decide_dedupe_pair(pair.id, "accepted", by="steward@example")
    sync(project)

    [customer] = erp_customers(folder)
    assert customer["crm_ref"] == "ERP-0007"
    assert (customer["name"], customer["vat"]) == ("Nordwind Handel GmbH", "DE811111111")
    assert customer["email"] == "info@nordwind.example"                  # most_recent: CRM
    provenance = store.dedupe_provenance("Account", "ERP-0007")
    assert (provenance["tax_id"].system, provenance["tax_id"].rule) == ("erp", "target")
    assert "disagree on identifier tax_id" in caplog.text

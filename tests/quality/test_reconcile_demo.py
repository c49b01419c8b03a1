"""Reconciliation on the demo systems: hand edits in the ERP are found."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir
from crm2erp.quality.reconcile import reconcile, values_equal
from crm2erp.store import StateStore


@pytest.fixture
def demo(tmp_path, monkeypatch, demo_copies):
    monkeypatch.delenv("CRM2ERP_REPORTS_DIR", raising=False)
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))  # restored after the test
    demo_copies(tmp_path, accounts=40)
    return tmp_path


def _sql(url: str, statement: str, **params):
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            return conn.execute(sa.text(statement), params).all() \
                if statement.lstrip().upper().startswith("SELECT") else \
                conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def _reconcile(folder):
    store = StateStore.open(f"sqlite:///{folder / 'state.db'}")
    try:
        with Engine(load_project(pack_dir("demo")), store) as engine:
            result = reconcile(engine.runner("demo_accounts"))
        return result, store.latest_reconciliation("demo_accounts")
    finally:
        store.close()


def test_a_fresh_sync_reconciles_clean(demo):
    result, stored = _reconcile(demo)
    assert result.status == "clean", result.details
    assert result.counts["matched"] == result.counts["target_count"] > 0
    assert result.counts["unmapped"] == result.counts["source_count"] - result.counts["matched"]
    assert stored.id == result.id and stored.status == "clean"


def test_finds_a_deleted_record_a_changed_field_and_an_orphan(demo):
    erp, crm = f"sqlite:///{demo / 'erp.db'}", f"sqlite:///{demo / 'crm.db'}"
    first, second, third = _sql(erp, "SELECT id, crm_ref, name, city FROM customers "
                                     "ORDER BY id LIMIT 3")
    _sql(erp, "DELETE FROM customers WHERE id = :id", id=first.id)
    _sql(erp, "UPDATE customers SET city = 'Hand Edited' WHERE id = :id", id=second.id)
    store = StateStore.open(f"sqlite:///{demo / 'state.db'}")
    source_key = {v: k for k, v in store.canonical_ids(
        "Account", "crm", [f"A-{n:04d}" for n in range(1, 41)]).items()}[third.crm_ref]
    store.close()
    _sql(crm, "DELETE FROM contacts WHERE account_id = :id", id=source_key)
    _sql(crm, "DELETE FROM accounts WHERE id = :id", id=source_key)

    result, stored = _reconcile(demo)

    assert result.status == "differences"
    assert result.counts["missing_in_target"] == 1
    missing = result.details["missing_in_target"][0]
    assert missing["key"] == first.crm_ref and "deleted in the target" in missing["note"]
    assert result.counts["different"] == 1
    different = result.details["different"]
    assert different == [{"key": second.crm_ref, "source_key": different[0]["source_key"],
                          "field": "city", "source": second.city, "target": "Hand Edited"}]
    with StateStore.open(f"sqlite:///{demo / 'state.db'}") as store:   # the CRM's key
        assert store.canonical_ids("Account", "crm", [different[0]["source_key"]]) == {
            different[0]["source_key"]: second.crm_ref}
    assert [o["source_key"] for o in result.details["orphaned"]] == [source_key]
    assert [e["key"] for e in result.details["only_in_target"]] == [third.crm_ref]
    assert stored.counts["missing_in_target"] == 1 and stored.counts["orphaned"] == 1
    assert stored.details["different"][0]["field"] == "city"


def test_cli_exits_1_on_differences_and_prints_json(demo):
    _sql(f"sqlite:///{demo / 'erp.db'}", "UPDATE customers SET name = 'X' WHERE id = 1")
    done = subprocess.run(
        [sys.executable, "-m", "crm2erp", "--project", str(pack_dir("demo")), "--state",
         f"sqlite:///{demo / 'state.db'}", "reconcile", "demo_accounts", "--json"],
        capture_output=True, text=True, env={**os.environ, "CRM2ERP_DEMO_DIR": str(demo),
                                             "COLUMNS": "200"})
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "differences" and data["counts"]["different"] == 1
    assert data["details"]["different"][0]["target"] == "X"


@pytest.mark.parametrize(("expected", "actual", "same"), [
    ("10.50", 10.5, True), (None, "", True), ("a", "b", False), (1, "1", True),
    ("2024-05-01", "2024-05-01", True), ([1], [1], True), ("x", None, False)])
def test_values_equal(expected, actual, same):
    assert values_equal(expected, actual) is same

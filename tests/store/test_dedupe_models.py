"""Trained matching models in the state store (migration 0007), on every database."""

from __future__ import annotations

import sqlalchemy as sa

from crm2erp.store import StateStore, migrate
from crm2erp.store.dedupe import DedupeModel

PAYLOAD = {"comparisons": [{"comparison": "name", "field": "name",
                            "levels": ["exact", "jaro_winkler>=0.9", "else"],
                            "m": [0.7, 0.29, 0.01], "u": [1e-05, 0.001, 0.99899]}],
           "lambda": 0.0052, "iterations": 12, "converged": True,
           "warnings": ["Grüße: ünïcode survives"]}


def test_the_newest_model_of_a_flow_is_read_back_with_its_values(any_reused_store_url):
    store = StateStore.open(any_reused_store_url)
    try:
        assert store.dedupe_model("accounts") is None
        first = store.save_dedupe_model(DedupeModel("accounts", "Account", 10, 4, PAYLOAD))
        second = store.save_dedupe_model(DedupeModel(
            "accounts", "Account", 120_000, 7_000_000, {**PAYLOAD, "lambda": 0.01}))
        store.save_dedupe_model(DedupeModel("contacts", "Contact", 3, 1, PAYLOAD))
        found = store.dedupe_model("accounts")
        assert second.id > first.id and found.id == second.id
        assert (found.n_records, found.n_pairs, found.entity) == (120_000, 7_000_000, "Account")
        assert found.model == {**PAYLOAD, "lambda": 0.01}
        assert found.trained_at is not None and found.trained_at.tzinfo is not None
        assert store.dedupe_model("contacts").model == PAYLOAD
    finally:
        store.close()


def test_migration_0007_down_and_up_again(any_store_url):
    store = StateStore.open(any_store_url)   # a copy of a migrated store
    try:
        migrate.downgrade(store.engine, "0006")
        assert "dedupe_models" not in sa.inspect(store.engine).get_table_names()
        migrate.upgrade(store.engine, "head")
        assert "dedupe_models" in sa.inspect(store.engine).get_table_names()
        saved = store.save_dedupe_model(DedupeModel("accounts", "Account", 2, 1, PAYLOAD))
        assert store.dedupe_model("accounts").id == saved.id
    finally:
        store.close()

"""commit_batch runs a fixed number of statements, whatever the batch size: no N+1."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm2erp.connectors.base import Cursor
from crm2erp.store import (
    BatchCommit,
    CanonicalState,
    ConflictRecord,
    NewDeadLetter,
    StateStore,
    XrefUpsert,
)


@pytest.fixture
def store(any_reused_store_url):
    store = StateStore.open(any_reused_store_url)
    yield store
    store.close()


def _batch(run_id: int, flow: str, size: int, tag: str) -> BatchCommit:
    """``size`` records of every kind; half the dead letters hit keys that already
    have an open entry, and one key fails twice."""
    keys = [f"{tag}{i}" for i in range(size)]
    return BatchCommit(
        run_id=run_id, flow=flow,
        xref=[XrefUpsert("account", "crm", k, f"c-{k}", f"h-{k}") for k in keys],
        dead_letters=[NewDeadLetter("map", f"bad{i}", f"error {i} {tag}", {"Id": i, "t": tag})
                      for i in range(size)] + [NewDeadLetter("map", "bad0", "again", None)],
        resolved_keys=keys,
        watermark=("Account", Cursor(f"2024-01-01T00:00:{size:02d}+00:00", keys[-1])),
        counts={"read": size, "created": size, "failed": size + 1},
        canonical=[CanonicalState("account", f"c-{k}", {"name": k}, {}) for k in keys],
        conflicts=[ConflictRecord("account", f"c-{k}", "name", "crm", "x", k, "erp",
                                  "ownership") for k in keys])


def _statements(store: StateStore, batch: BatchCommit) -> int:
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        store.commit_batch(batch)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    return len(seen)


def test_statements_per_batch_do_not_grow_with_the_batch(store):
    counts = {}
    for size in (4, 60):
        flow = f"accounts{size}"
        run_id = store.start_run(flow, "incremental")
        # an earlier batch left open entries for the first half of the keys, and
        # wrote under the entity and system names (numbered once per store: names)
        store.commit_batch(BatchCommit(run_id=run_id, flow=flow, dead_letters=[
            NewDeadLetter("map", f"bad{i}", "before", None) for i in range(size // 2)],
            xref=[XrefUpsert("account", "crm", "earlier", "c-earlier")]))
        counts[size] = _statements(store, _batch(run_id, flow, size, f"s{size}-"))
        letters = {d.source_key: d for d in store.dead_letters(
            flow=flow, status="open", limit=1000)}
        assert letters["bad0"].attempts == 3 and letters["bad0"].error == "again"
        assert letters[f"bad{size - 1}"].attempts == 1
        assert letters[f"bad{size - 1}"].payload == {"Id": size - 1, "t": f"s{size}-"}
        assert store.canonical_ids("account", "crm", [f"s{size}-{size - 1}"]) == {
            f"s{size}-{size - 1}": f"c-s{size}-{size - 1}"}
        assert store.canonical_states("account", [f"c-s{size}-0"])[f"c-s{size}-0"].data == {
            "name": f"s{size}-0"}
    assert counts[4] == counts[60], counts

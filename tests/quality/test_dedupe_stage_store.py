"""The dedupe tables' queries on every supported state-store database."""

from __future__ import annotations

import pytest

from crm2erp.errors import ConfigError
from crm2erp.store import StateStore
from crm2erp.store.dedupe import DedupeMember, DedupePair, Provenance, pair_key


def test_pairs_decisions_members_and_provenance(any_store_url):
    store = StateStore.open(any_store_url)
    try:
        left, right = pair_key("c-2", "c-1")
        assert (left, right) == ("c-1", "c-2")
        pair = DedupePair("Account", left, right, "accounts", "pending", "score", 0.9, 3.2,
                          "Acme", "ACME GmbH", {"fields": [{"comparison": "name"}]}, run_id=1)
        ids = store.save_dedupe_pairs([pair])
        assert store.save_dedupe_pairs([pair]) == ids          # an upsert, not a second row
        assert [p.status for p in store.dedupe_pairs(status="review")] == ["pending"]

        decided = store.decide_dedupe_pair(ids[(left, right)], "rejected", by="ana")
        assert (decided.status, decided.decided_by) == ("rejected", "ana")
        assert decided.decided_at is not None
        # a later run's refresh keeps the steward's decision
        store.save_dedupe_pairs([pair])
        assert store.get_dedupe_pair(ids[(left, right)]).status == "rejected"
        assert store.dedupe_decisions("Account", ["c-2"]) == {("c-1", "c-2"): "rejected"}
        assert store.dedupe_decisions("Contact", ["c-2"]) == {}
        with pytest.raises(ConfigError, match="accept"):
            store.decide_dedupe_pair(ids[(left, right)], "maybe", by="ana")
        with pytest.raises(ConfigError, match="#404"):
            store.get_dedupe_pair(404)

        members = [DedupeMember("c-1", "c-1", "crm", "A1", {"name": "Acme"}),
                   DedupeMember("c-2", "c-1", "erp", "7", {"name": "ACME GmbH"})]
        store.save_dedupe_merge("Account", "accounts", 1, "c-1", members,
                                [Provenance("name", "c-2", "erp", "7", "source_priority")])
        store.save_dedupe_merge("Account", "accounts", 2, "c-1", members[:1],
                                [Provenance("name", "c-1", "crm", "A1", "most_recent")])
        found = store.dedupe_members("Account", ["c-1", "c-9"])
        assert [(m.member_id, m.system) for m in found["c-1"]] == [("c-1", "crm"), ("c-2", "erp")]
        assert store.dedupe_provenance("Account", "c-1") == {
            "name": Provenance("name", "c-1", "crm", "A1", "most_recent")}
    finally:
        store.close()

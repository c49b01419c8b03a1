"""The toolkit's per-row results of a planned batch (:mod:`.toolkit.results`) and its plan
of ordered child records (:mod:`.toolkit.sequenced`)."""

from __future__ import annotations

import pytest

from crm2erp.connectors.base import WriteAction, WriteResult
from crm2erp.connectors.toolkit.results import RowResults
from crm2erp.connectors.toolkit.sequenced import plan_children


def test_keyed_fails_rows_without_a_key_or_with_a_repeated_one_and_answers_in_order():
    rows = [{"k": "A"}, {"k": ""}, {"k": "B"}, {"k": "A"}]
    results = RowResults.keyed(rows, lambda row: row["k"], missing="no key",
                               twice=lambda key: f"{key} twice")
    assert results.keys == {0: "A", 2: "B"}
    results.set(2, WriteAction.CREATED, "7")
    results.fail(0, "refused")
    assert results.all() == [
        WriteResult("A", WriteAction.FAILED, error="refused"),
        WriteResult("", WriteAction.FAILED, error="no key"),
        WriteResult("B", WriteAction.CREATED, "7"),
        WriteResult("A", WriteAction.FAILED, error="A twice"),
    ]


def test_a_row_left_without_a_result_is_a_bug_not_a_silent_gap():
    results = RowResults(2, {0: "x", 1: "y"})
    results.set(0, WriteAction.UNCHANGED, "1")
    with pytest.raises(RuntimeError, match=r"rows \[1\] have no result"):
        results.all()


def _child(cid, sig, *, active=True, sequence=None, **values):
    return sig, {"id": cid, "active": active, "sequence": sequence, **values}


def test_plan_children_puts_the_wanted_first_reactivates_matches_and_retires_the_rest():
    current = [_child(1, "a", sequence=1), _child(2, "b", sequence=2, mine=True),
               _child(3, "c", active=False, sequence=3, flag=False),
               _child(4, "d", sequence=4)]
    wanted = [("c", {"v": "c", "flag": True}), ("new", {"v": "new"}), ("a", {"v": "a"})]
    plan = plan_children(current, wanted, compare=("flag",),
                         retire=lambda child: bool(child.get("mine")))
    # c is reactivated and first, new is second, a third; b retired; d kept after them
    assert plan.creates == [{"v": "new", "sequence": 2}]
    assert plan.writes == {3: {"flag": True, "active": True, "sequence": 1},
                           2: {"active": False}, 1: {"sequence": 3}}
    assert 4 not in plan.writes    # already fourth


def test_plan_children_without_reorder_only_adds_and_reactivates():
    current = [_child(1, "a", active=False, sequence=5), _child(2, "b", sequence=1)]
    plan = plan_children(current, [("a", {}), ("z", {"v": "z"})], reorder=False,
                         retire=lambda child: True)
    assert plan.creates == [{"v": "z"}]
    assert plan.writes == {1: {"active": True}}

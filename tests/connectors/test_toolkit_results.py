"""The toolkit's per-row results of a planned batch (:mod:`.toolkit.results`)."""

from __future__ import annotations

import pytest

from crm2erp.connectors.base import WriteAction, WriteResult
from crm2erp.connectors.toolkit.results import RowResults


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

"""Scoring in chunks, keeping only decided pairs, on column-wise records: same decisions.

A million-record run cannot hold every candidate pair's scores at once; the
matcher scores ``chunk_size`` pairs at a time and, with
``keep_distinct=False``, keeps only pairs at or above the review threshold
(plus rule and rejected pairs). Clusters, merges and reviews must be exactly
those of a run that keeps everything in one chunk.
"""

import numpy as np
import pytest

from crm2erp.quality.dedupe import Matcher, preset
from crm2erp.testing.company_accounts import generate, generate_columns, predicted_pairs


@pytest.fixture(scope="module")
def accounts():
    return generate(3000, seed=7)


def _decided(result):
    return {(p.left_id, p.right_id): (p.decision, p.reason, round(p.match_weight, 9))
            for p in result.pairs(["merge", "review", "rejected"])}


def test_small_chunks_without_distinct_pairs_decide_exactly_as_one_chunk(accounts):
    rows, truth = accounts
    config = preset("account")
    rejected = [sorted(min(truth, key=sorted))]   # a true pair a steward rejected
    full = Matcher(config, chunk_size=10**9).dedupe(rows, rejected=rejected)
    lean = Matcher(config, keep_distinct=False, chunk_size=997).dedupe(rows, rejected=rejected)
    assert lean.candidate_pairs == full.candidate_pairs == len(full) > 20 * len(lean)
    assert set(lean.decision) <= {"merge", "review", "rejected"}
    assert _decided(lean) == _decided(full) and len(_decided(full)) > 500
    assert [(c.cluster_id, c.record_ids) for c in lean.clusters] == [
        (c.cluster_id, c.record_ids) for c in full.clusters]
    assert lean.counts()["rejected"] == 1
    assert lean.li.dtype == np.int32 and lean.tf_adjustment.shape == lean.gamma.shape
    tp = len(predicted_pairs(lean) & truth)
    assert tp / len(truth) > 0.95


def test_column_wise_accounts_are_the_generated_dicts():
    rows, truth = generate(500, seed=4)
    columns, column_truth = generate_columns(500, seed=4)
    assert len(columns) == len(rows) > 480 and column_truth == truth
    assert [columns[i] for i in range(len(columns))] == rows and columns[-3:] == rows[-3:]
    # the matcher reads a field of all records at once, without building dicts
    assert columns.values_of("billing_address.city") == [r["billing_address"]["city"]
                                                         for r in rows]
    assert columns.values_of("phone") == [r["phone"] for r in rows]
    assert columns.values_of("city") == columns.values_of("customer_number") == [None] * len(rows)


def test_column_wise_accounts_match_like_their_dicts():
    rows, _ = generate(1500, seed=6)
    columns, _ = generate_columns(1500, seed=6)
    matcher = Matcher(preset("account"), keep_distinct=False)
    assert predicted_pairs(matcher.dedupe(columns)) == predicted_pairs(matcher.dedupe(rows))


def test_a_chunk_size_below_one_is_refused():
    with pytest.raises(ValueError, match="chunk_size must be a positive"):
        Matcher(preset("account"), chunk_size=0)


def test_plain_components_label_every_node_with_its_smallest_connected_node():
    from crm2erp.quality.dedupe.clustering import plain_components

    a, b = np.array([4, 1, 2, 6]), np.array([3, 2, 0, 5])
    assert plain_components(8, a, b).tolist() == [0, 0, 0, 3, 3, 5, 5, 7]

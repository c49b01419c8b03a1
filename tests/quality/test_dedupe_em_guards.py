"""EM that cannot degenerate: monotone levels, lambda bounds, implausible fits refused.

The training data puts 80 % of the companies in one city (one postcode): EM
over all candidate pairs without constraints learns "same city = same
company" there; the guarded fit must not.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm2erp.quality.dedupe import ImplausibleFit, Matcher, preset
from crm2erp.quality.dedupe.fellegi_sunter import (
    estimate_u,
    expectation_maximisation,
    monotone_m,
)
from crm2erp.quality.dedupe.matcher import _Batch
from crm2erp.testing.company_accounts import generate, predicted_pairs

MUELLER = [
    {"id": "erp-1", "name": "Müller Bau GmbH", "phone": "+49 30 1234567",
     "billing_address": {"city": "Berlin", "postal_code": "10115", "country": "DE"}},
    {"id": "crm-1", "name": "Mueller Bau G.m.b.H.", "phone": "030 123 45 67",
     "billing_address": {"city": "Berlin", "postal_code": "10115", "country": "DE"}},
]


def unfitted():
    """The account preset without its shipped m/u/lambda, so EM estimates them."""
    config = preset("account")
    comparisons = [c.model_copy(update={"m": None, "u": None}) for c in config.comparisons]
    return config.model_copy(update={"comparisons": comparisons, "lambda_": None})


@pytest.fixture(scope="module")
def city_heavy():
    rows, truth = generate(2500, seed=5, dominant_city=0.8)
    return rows + MUELLER, truth | {frozenset(("erp-1", "crm-1"))}


def test_unconstrained_em_degenerates_on_this_data(city_heavy):
    """The data is hostile: one EM over all candidates without constraints goes wrong."""
    rows, _ = city_heavy
    matcher = Matcher(unfitted())
    batch = _Batch(matcher, rows, None)
    li, ri = batch.candidates()
    gamma = batch.gamma(li, ri)[0]
    n_levels = [c.n_levels for c in matcher.config.comparisons]
    # u refined by EM: a worse level (a similar city) outweighs a better one (the same city)
    uniform = [np.full(n, 1 / n) for n in n_levels]
    free = expectation_maximisation(gamma, n_levels, uniform, fix_u=False, monotone=False,
                                    max_iterations=200)
    assert any((np.diff(w[:-1]) > 1).any() for w in free.level_weights())
    # u from random pairs (fix_u): lambda runs far above the share of true pairs among the
    # candidates, and the "match" class learned is "similar name", not "same name"
    rows_truth = city_heavy[1]
    random_u = Matcher(unfitted()).fit(rows).u
    fixed = expectation_maximisation(gamma, n_levels, random_u, fix_u=True, monotone=False,
                                     max_iterations=200)
    assert fixed.lambda_ > 5 * len(rows_truth) / len(li)
    name_m = fixed.m[0]                          # exact, >= 0.94, >= 0.85, else
    assert name_m[0] < name_m[2]


def test_guarded_fit_keeps_every_level_monotone_and_finds_the_duplicates(city_heavy):
    rows, truth = city_heavy
    matcher = Matcher(unfitted())
    params = matcher.fit(rows)
    for comparison, m, u in zip(matcher.config.comparisons, params.m, params.u, strict=True):
        assert (m[:-1] >= u[:-1]).all(), (comparison.label, m, u)   # agreement: m >= u
        assert m[-1] <= u[-1], (comparison.label, m, u)              # else: m <= u
        ratio = m / u
        assert (np.diff(ratio) <= 1e-9).all(), (comparison.label, ratio)
    assert params.lambda_ < 0.1

    result = matcher.dedupe(rows)
    pair = next(p for p in result.pairs(None) if {p.left_id, p.right_id} == {"erp-1", "crm-1"})
    assert pair.match_probability >= matcher.config.thresholds.upper
    predicted = predicted_pairs(result)
    tp = len(predicted & truth)
    assert tp / len(truth) >= 0.95 and tp / len(predicted) >= 0.99


def test_fix_u_no_longer_drives_lambda_to_one(city_heavy):
    rows, truth = city_heavy
    config = unfitted()
    assert config.em.fix_u
    matcher = Matcher(config)
    result = matcher.dedupe(rows)
    assert matcher.params.lambda_ < 0.1
    assert len(predicted_pairs(result)) < 1.2 * len(truth)   # not "everything merges"


def test_a_fit_without_evidence_is_refused_and_no_model_kept():
    rows = [{"id": i, "name": "Acme GmbH", "billing_address": {"city": "Berlin"}}
            for i in range(40)]
    matcher = Matcher(unfitted())
    with pytest.raises(ImplausibleFit, match="implausible"):
        matcher.fit(rows)
    assert matcher.params is None


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 5).flatmap(lambda n: st.tuples(
    st.lists(st.floats(0.001, 1), min_size=n, max_size=n),
    st.lists(st.floats(0.001, 1), min_size=n, max_size=n))))
def test_monotone_m_is_a_distribution_with_non_increasing_ratio(mu):
    m, u = (np.array(x) / sum(x) for x in mu)
    out = monotone_m(m, u)
    assert np.isclose(out.sum(), 1.0) and (out > 0).all()
    assert (out[:-1] >= u[:-1] - 1e-12).all() and out[-1] <= u[-1] + 1e-12
    assert (np.diff(out / u) <= 1e-9).all()


def test_estimate_u_is_not_touched_by_em():
    gamma = np.array([[0], [0], [1], [1]], dtype=np.int8)
    u = estimate_u(gamma, [2])
    params = expectation_maximisation(gamma, [2], u)
    assert np.array_equal(params.u[0], u[0])


def test_term_frequency_common_values_weigh_less_than_rare_ones():
    # 30 different companies called "Müller Bau" in Berlin (different phones), and one
    # duplicate pair of a rare name in Berlin and one in a rare city
    rows = [{"id": f"m{i}", "name": "Müller Bau GmbH", "phone": f"+49 30 55{i:05d}",
             "billing_address": {"city": "Berlin", "postal_code": "10115", "country": "DE"}}
            for i in range(30)]
    rows += [{"id": f"z{i}", "name": "Zwirnerei Quappendorf GmbH", "phone": None,
              "billing_address": {"city": "Quappendorf", "postal_code": "15345",
                                  "country": "DE"}} for i in range(2)]
    result = Matcher(preset("account")).dedupe(rows)
    pairs = {frozenset((p.left_id, p.right_id)): p for p in result.pairs(None)}
    common, rare = pairs[frozenset(("m0", "m1"))], pairs[frozenset(("z0", "z1"))]
    assert common.fields["name"].level == rare.fields["name"].level == 0
    assert common.fields["name"].weight < rare.fields["name"].weight - 4
    assert common.fields["city"].weight < rare.fields["city"].weight - 4
    assert rare.match_weight - common.match_weight > 8
    # a pair's weight is the sum of its field weights and the prior
    prior = np.log2(result.params.lambda_ / (1 - result.params.lambda_))
    assert np.isclose(sum(f.weight for f in rare.fields.values()) + prior, rare.match_weight)


def test_tf_adjustment_is_zero_for_an_average_agreement():
    from crm2erp.quality.dedupe.fellegi_sunter import tf_adjustment

    counts = np.array([2, 2, 2, 2, 10, 1])
    adj = tf_adjustment(counts, np.array([0, 4]))
    assert adj[0] > 0 > adj[1]
    assert np.allclose(tf_adjustment(np.array([2, 2]), np.array([0, 1])), 0.0)

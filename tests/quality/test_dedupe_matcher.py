"""The pipeline with fixed parameters: decisions, precedence, review, clustering guards."""

import numpy as np
import pytest

from crm2erp.errors import RecordError
from crm2erp.quality.dedupe import Matcher, parse_config
from crm2erp.quality.dedupe.clustering import constrained_components

CONTACTS = """
entity: contact
blocking:
  - [{field: last_name, transform: soundex}]
  - [email]
deterministic:
  - {name: tax_id, fields: [{field: tax_id, transform: tax_id}]}
comparisons:
  - {field: first_name, method: jaro_winkler, thresholds: [0.9],
     m: [0.8, 0.15, 0.05], u: [0.01, 0.02, 0.97]}
  - {field: last_name, method: jaro_winkler, thresholds: [0.9],
     m: [0.8, 0.15, 0.05], u: [0.01, 0.02, 0.97]}
  - {field: email, method: email_domain, m: [0.7, 0.2, 0.1], u: [0.001, 0.05, 0.949]}
  - {field: city, method: exact, m: [0.9, 0.1], u: [0.1, 0.9]}
lambda: 0.1
thresholds: {upper: 0.95, lower: 0.5}
"""

PEOPLE = [
    {"id": "a1", "first_name": "Anna", "last_name": "Meier", "email": "anna@x.com",
     "city": "Berlin", "tax_id": "DE 1"},
    {"id": "a2", "first_name": "Anna", "last_name": "Meier", "email": "anna@x.com",
     "city": "Berlin", "tax_id": None},
    {"id": "a3", "first_name": "Bob", "last_name": "Bauer", "email": "bob@y.com",
     "city": "Hamburg", "tax_id": "de1"},
    {"id": "a4", "first_name": "Ana", "last_name": "Meier", "email": None,
     "city": "Munich", "tax_id": None},
    {"id": "z9", "first_name": "Zoe", "last_name": "Quast", "email": None, "city": "Bonn"},
]


@pytest.fixture
def matcher():
    return Matcher(parse_config(CONTACTS))


def decisions(result):
    return {frozenset((p.left_id, p.right_id)): (p.decision, p.reason)
            for p in result.pairs(None)}


def test_fixed_parameters_score_and_decide(matcher):
    result = matcher.dedupe(PEOPLE)
    got = decisions(result)
    assert got[frozenset(("a1", "a2"))] == ("merge", "score")
    assert all("z9" not in pair for pair in got)  # nothing blocks with Zoe
    pair = next(p for p in result.pairs() if {p.left_id, p.right_id} == {"a1", "a2"})
    # prior log2(1/9) + exact first, last, email, city
    expected = np.log2(1 / 9) + 2 * np.log2(0.8 / 0.01) + np.log2(700) + np.log2(9)
    assert pair.match_weight == pytest.approx(expected)
    assert pair.match_probability == pytest.approx(2**expected / (1 + 2**expected))


def test_deterministic_rule_links_regardless_of_score(matcher):
    result = matcher.dedupe(PEOPLE)
    pair = next(p for p in result.pairs(None) if {p.left_id, p.right_id} == {"a1", "a3"})
    assert pair.match_probability < 0.01  # the score alone says distinct
    assert (pair.decision, pair.reason) == ("merge", "rule:tax_id")
    cluster = next(c for c in result.clusters if "a1" in c.record_ids)
    assert sorted(cluster.record_ids) == ["a1", "a2", "a3"]


def test_rejected_pair_is_kept_apart(matcher):
    result = matcher.dedupe(PEOPLE, rejected={("a2", "a1")})
    got = decisions(result)
    assert got[frozenset(("a1", "a2"))] == ("rejected", "rejected")
    assert got[frozenset(("a1", "a3"))] == ("merge", "rule:tax_id")
    entity = result.entity_of()
    assert entity.get("a1") != entity.get("a2")
    # a rejected pair also beats a deterministic rule
    result = matcher.dedupe(PEOPLE, rejected=[["a1", "a3"]])
    assert decisions(result)[frozenset(("a1", "a3"))][0] == "rejected"
    assert result.entity_of().get("a3") != result.entity_of().get("a1")


def test_review_queue_shows_fields_side_by_side(matcher):
    result = matcher.dedupe(PEOPLE)
    queue = result.review_queue()
    assert queue, result.counts()
    pair = next(p for p in queue if {p.left_id, p.right_id} == {"a2", "a4"})
    first = pair.fields["first_name"]
    assert {first.left, first.right} == {"Anna", "Ana"}
    assert first.label == "jaro_winkler>=0.9" and first.level == 1 and first.score > 0.9
    assert pair.fields["email"].label == "null" and pair.fields["email"].weight == 0
    assert pair.fields["city"].label == "else" and pair.fields["city"].weight < 0
    assert 0.5 <= pair.match_probability < 0.95
    assert sum(f.weight for f in pair.fields.values()) + np.log2(1 / 9) == pytest.approx(
        pair.match_weight)


def test_link_new_batch_against_existing(matcher):
    existing = [dict(PEOPLE[0], id="e1"), dict(PEOPLE[4], id="e2")]
    batch = [dict(PEOPLE[1], id="n1"), dict(PEOPLE[2], id="n2"),
             {"id": "n3", "first_name": "Max", "last_name": "Power", "email": "m@p.de"}]
    result = matcher.link(batch, existing)
    assert result.links() == {"n1": ["e1"], "n2": ["e1"]}  # n2 through the tax id rule
    assert {(p.left_id, p.right_id) for p in result.merges()} == {("n1", "e1"), ("n2", "e1")}
    assert [c.cluster_id for c in result.clusters] == ["e1"]


def test_ids_must_be_present_and_unique(matcher):
    with pytest.raises(RecordError, match="repeat id 'a1'"):
        matcher.dedupe([PEOPLE[0], PEOPLE[0]])
    with pytest.raises(RecordError, match="has no 'id'"):
        matcher.dedupe([{"first_name": "x"}])


CHAIN = """
entity: thing
blocking: [[name]]
comparisons:
  - {field: name, method: exact, m: [0.9, 0.1], u: [0.01, 0.99]}
  - {field: code, method: numeric, thresholds: [1], m: [0.5, 0.45, 0.05], u: [0.01, 0.02, 0.97]}
lambda: 0.1
thresholds: {upper: 0.95, lower: 0.5}
clustering: {min_pair_probability: %s, max_cluster_size: %d}
"""


def chain(min_pair: str, max_size: int):
    records = [{"id": i, "name": "acme", "code": code} for i, code in enumerate([0, 1, 2])]
    return Matcher(parse_config(CHAIN % (min_pair, max_size))).dedupe(records)


def test_without_guard_connected_components_chain():
    result = chain("null", 50)
    assert [sorted(c.record_ids) for c in result.clusters] == [[0, 1, 2]]
    assert decisions(result)[frozenset((0, 2))][0] == "distinct"


def test_weakest_link_guard_breaks_the_chain():
    # 0~1 and 1~2 merge, but 0 and 2 compared directly score ~0.34 < 0.5
    result = chain("0.5", 50)
    assert [sorted(c.record_ids) for c in result.clusters] == [[0, 1]]
    got = decisions(result)
    assert got[frozenset((0, 1))] == ("merge", "score")
    assert got[frozenset((1, 2))] == ("review", "chain_guard")


def test_max_cluster_size_guard():
    result = chain("null", 2)
    assert [len(c.record_ids) for c in result.clusters] == [2]
    assert result.counts()["review"] == 1


def test_constrained_components_directly():
    # path 0-1-2-3 plus 4-5; 0 and 3 must stay apart; the weakest edge (2-3) gives way
    a, b = np.array([0, 1, 2, 4]), np.array([1, 2, 3, 5])
    strength = np.array([5.0, 4.0, 3.0, 9.0])
    hard = np.array([False, False, False, True])
    labels, used = constrained_components(6, a, b, strength, hard, [(0, 3)], [], 10)
    assert labels.tolist() == [0, 0, 0, 3, 4, 4]
    assert used.tolist() == [True, True, False, True]
    # hard edges ignore the size limit
    labels, used = constrained_components(3, np.array([0, 1]), np.array([1, 2]),
                                          np.array([1.0, 1.0]), np.array([True, True]),
                                          [], [], 2)
    assert labels.tolist() == [0, 0, 0]


def test_deterministic_links_come_first_and_constrain_later_merges(matcher):
    # a3 shares a1's tax id but looks nothing like a2: merging a2 would put a2 and a3
    # (scored ~0 directly) in one entity, so the a1-a2 merge goes to review instead
    people = [*PEOPLE[:2], dict(PEOPLE[2], last_name="Mayr")]
    got = decisions(matcher.dedupe(people))
    assert got[frozenset(("a1", "a3"))] == ("merge", "rule:tax_id")
    assert got[frozenset(("a1", "a2"))] == ("review", "chain_guard")


def test_empty_and_single_record_batches(matcher):
    assert len(matcher.dedupe([])) == 0
    single = matcher.dedupe([PEOPLE[0]])
    assert single.clusters == [] and single.counts()["merge"] == 0
    assert matcher.link([], [PEOPLE[0]]).links() == {}

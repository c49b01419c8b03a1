"""What a matching run returns: scored pairs, decisions and clusters.

Scores stay in numpy arrays (a run can score millions of pairs); the
:class:`PairResult` objects a review UI shows - both values side by side with
each field's level, raw score and weight - are built only for the pairs asked
for.
"""

from __future__ import annotations

__all__ = ["DECISIONS", "FieldScore", "PairResult", "Cluster", "MatchResult"]

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crm2erp.quality.dedupe.config import MatchConfig
from crm2erp.quality.dedupe.fellegi_sunter import FSParams
from crm2erp.quality.dedupe.survivorship import GoldenRecord, survive
from crm2erp.quality.dedupe.transforms import get_path

DECISIONS = ("merge", "review", "distinct", "rejected")


@dataclass(frozen=True)
class FieldScore:
    """One comparison of one pair: both values, the level reached and its evidence."""

    comparison: str
    field: str
    left: Any
    right: Any
    level: int  # 0 = best; -1 = null on either side
    label: str
    score: float | None  # similarity, edit distance, days... (see the comparison method)
    weight: float  # log2(m/u) of the level; 0 for null


@dataclass(frozen=True)
class PairResult:
    """A scored candidate pair and what was decided about it, and why.

    ``reason`` is ``score`` (the thresholds decided), ``rule:<name>`` (a
    deterministic rule linked it), ``rejected`` (a stored human decision) or
    ``chain_guard`` (a merge-level score the clustering guard refused, so
    the pair goes to review).
    """

    left_id: Any
    right_id: Any
    match_weight: float
    match_probability: float
    decision: str
    reason: str
    fields: dict[str, FieldScore]


@dataclass
class Cluster:
    """One entity: ids of the batch's records and (link mode) of existing records."""

    cluster_id: Any
    record_ids: list[Any]
    existing_ids: list[Any] = field(default_factory=list)


@dataclass
class MatchResult:
    """Everything a dedupe or link run produced. Pair arrays are aligned."""

    mode: str  # "dedupe" or "link"
    config: MatchConfig
    params: FSParams
    left: Sequence[Mapping[str, Any]]
    right: Sequence[Mapping[str, Any]]  # the same list as left in dedupe mode
    li: np.ndarray
    ri: np.ndarray
    gamma: np.ndarray
    scores: np.ndarray
    match_weight: np.ndarray
    match_probability: np.ndarray
    decision: np.ndarray  # object array of DECISIONS
    reason: np.ndarray  # object array
    clusters: list[Cluster]
    tf_adjustment: np.ndarray | None = None  # per pair and comparison, bits (term frequency)
    # pairs blocking produced; more than len() when the matcher keeps no distinct pairs
    candidate_pairs: int | None = None

    def __len__(self) -> int:
        return len(self.li)

    def counts(self) -> dict[str, int]:
        """Number of pairs per decision."""
        return {d: int((self.decision == d).sum()) for d in DECISIONS}

    def _pair(self, k: int, field_weights: np.ndarray) -> PairResult:
        id_field = self.config.id_field
        a, b = self.left[self.li[k]], self.right[self.ri[k]]
        fields = {}
        for c, comp in enumerate(self.config.comparisons):
            level = int(self.gamma[k, c])
            score = float(self.scores[k, c])
            fields[comp.label] = FieldScore(
                comparison=comp.label, field=comp.field, left=get_path(a, comp.field),
                right=get_path(b, comp.field), level=level,
                label="null" if level < 0 else comp.level_labels[level],
                score=None if np.isnan(score) else score, weight=float(field_weights[c]))
        return PairResult(left_id=a.get(id_field), right_id=b.get(id_field),
                          match_weight=float(self.match_weight[k]),
                          match_probability=float(self.match_probability[k]),
                          decision=str(self.decision[k]), reason=str(self.reason[k]),
                          fields=fields)

    def pairs(self, decisions: Iterable[str] | None = ("merge", "review", "rejected"),
              ) -> list[PairResult]:
        """Pairs with the given decisions (all when None), most probable first."""
        mask = np.ones(len(self.li), dtype=bool) if decisions is None else np.isin(
            self.decision, list(decisions))
        index = np.flatnonzero(mask)
        index = index[np.argsort(-self.match_weight[index], kind="stable")]
        weights = self.params.field_weights(self.gamma[index])
        if self.tf_adjustment is not None:
            weights = weights + self.tf_adjustment[index]
        return [self._pair(int(k), weights[i]) for i, k in enumerate(index)]

    def review_queue(self) -> list[PairResult]:
        """Pairs between the thresholds (or refused by the chain guard) for a human."""
        return self.pairs(["review"])

    def merges(self) -> list[PairResult]:
        return self.pairs(["merge"])

    def entity_of(self) -> dict[Any, Any]:
        """Batch record id -> cluster id, for every record in a cluster of two or more."""
        return {rid: c.cluster_id for c in self.clusters for rid in c.record_ids}

    def links(self) -> dict[Any, list[Any]]:
        """Link mode: batch record id -> ids of the existing records of its entity."""
        out: dict[Any, list[Any]] = defaultdict(list)
        for cluster in self.clusters:
            for rid in cluster.record_ids:
                out[rid].extend(cluster.existing_ids)
        return {k: v for k, v in out.items() if v}

    def golden_records(self) -> dict[Any, GoldenRecord]:
        """Cluster id -> golden record built by the configuration's survivorship rules."""
        id_field = self.config.id_field
        by_id: dict[tuple[str, Any], Mapping[str, Any]] = {}
        for r in self.left:
            by_id["batch", r.get(id_field)] = r
        if self.mode == "link":
            for r in self.right:
                by_id["existing", r.get(id_field)] = r
        out = {}
        for cluster in self.clusters:
            members = [by_id["batch", rid] for rid in cluster.record_ids]
            members += [by_id["existing", rid] for rid in cluster.existing_ids]
            out[cluster.cluster_id] = survive(members, self.config.survivorship,
                                              id_field=id_field)
        return out

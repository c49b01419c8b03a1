"""The matching pipeline: block, apply rules, compare, score, decide, cluster.

:class:`Matcher` works on plain dicts. ``dedupe(records)`` finds duplicates
inside one batch; ``link(new, existing)`` matches a new batch against records
already synced (no pairs inside either side). Order of precedence per pair:

1. a *rejected* pair (stored human decision) is never merged;
2. a *deterministic* rule links the pair whatever its score;
3. otherwise the Fellegi-Sunter match probability decides: ``>= upper`` merge,
   ``>= lower`` review, else distinct.

Parameters come from the configuration when every m, u and lambda is given,
else from :meth:`Matcher.fit` (or are fitted on the batch at first use).
"""

from __future__ import annotations

__all__ = ["Matcher"]

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from crm2erp.errors import RecordError
from crm2erp.quality.dedupe.blocking import block_pairs, link_pairs, pair_codes, random_pairs
from crm2erp.quality.dedupe.clustering import constrained_components
from crm2erp.quality.dedupe.comparators import compare, prepare
from crm2erp.quality.dedupe.config import MatchConfig
from crm2erp.quality.dedupe.fellegi_sunter import (
    FSParams,
    estimate_u,
    expectation_maximisation,
    initial_m,
)
from crm2erp.quality.dedupe.results import Cluster, MatchResult

log = logging.getLogger(__name__)

Records = Sequence[Mapping[str, Any]]


class Matcher:
    """Deduplicate or link records of one entity under a :class:`MatchConfig`."""

    def __init__(self, config: MatchConfig, params: FSParams | None = None):
        self.config = config
        self.params = params or self._configured_params()

    # -- parameters -----------------------------------------------------------------
    def _configured_params(self) -> FSParams | None:
        if not self.config.fitted:
            return None
        return FSParams(m=[np.asarray(c.m, dtype=float) for c in self.config.comparisons],
                        u=[np.asarray(c.u, dtype=float) for c in self.config.comparisons],
                        lambda_=float(self.config.lambda_))

    def fit(self, records: Records, existing: Records | None = None) -> FSParams:
        """Estimate u (random pairs) then m and lambda (EM on candidate pairs), no labels.

        Pass ``existing`` to fit for linking; m/u given in the configuration
        are kept as they are.
        """
        cfg, em = self.config, self.config.em
        left, right = records, records if existing is None else existing
        self._check_ids(left, "batch")
        if existing is not None:
            self._check_ids(right, "existing")
        prep_l = self._prepare(left)
        prep_r = prep_l if existing is None else self._prepare(right)
        n_levels = [c.n_levels for c in cfg.comparisons]
        ra, rb = random_pairs(len(left), None if existing is None else len(right),
                              em.u_sample_size, em.seed)
        u = estimate_u(self._gamma(prep_l, prep_r, ra, rb)[0], n_levels)
        u = [np.asarray(c.u, dtype=float) if c.u else est
             for c, est in zip(cfg.comparisons, u, strict=True)]
        m0 = [np.asarray(c.m, dtype=float) if c.m else initial_m(n)
              for c, n in zip(cfg.comparisons, n_levels, strict=True)]
        li, ri = self._candidates(left, None if existing is None else right)
        gamma = self._gamma(prep_l, prep_r, li, ri)[0]
        self.params = expectation_maximisation(
            gamma, n_levels, u, m0, cfg.lambda_ or 0.1, fix_u=em.fix_u,
            fixed_m=[c.m is not None for c in cfg.comparisons],
            max_iterations=em.max_iterations, tolerance=em.tolerance)
        return self.params

    def fitted_config(self) -> MatchConfig:
        """The configuration with the estimated m, u and lambda written in (to save as YAML)."""
        if self.params is None:
            raise RuntimeError("fit() the matcher before exporting its parameters")
        comparisons = [c.model_copy(update={"m": [round(float(x), 8) for x in m],
                                            "u": [round(float(x), 8) for x in u]})
                       for c, m, u in zip(self.config.comparisons, self.params.m, self.params.u,
                                          strict=True)]
        return self.config.model_copy(update={"comparisons": comparisons,
                                              "lambda_": round(self.params.lambda_, 8)})

    # -- public runs --------------------------------------------------------------------
    def dedupe(self, records: Records, *, rejected: Iterable[Collection[Any]] = ()) -> MatchResult:
        """Find duplicates within one batch of records."""
        return self._run(records, None, rejected)

    def link(self, records: Records, existing: Records, *,
             rejected: Iterable[Collection[Any]] = ()) -> MatchResult:
        """Match a new batch against existing records (pairs are (batch, existing))."""
        return self._run(records, existing, rejected)

    # -- internals ------------------------------------------------------------------------
    def _check_ids(self, records: Records, side: str) -> dict[Any, int]:
        id_field, index = self.config.id_field, {}
        for i, record in enumerate(records):
            rid = record.get(id_field)
            if rid is None:
                raise RecordError(f"{side} record #{i} of {self.config.entity} has no "
                                  f"{id_field!r}; give every record a unique id",
                                  stage="dedupe", field=id_field)
            if rid in index:
                raise RecordError(f"{side} records of {self.config.entity} repeat id {rid!r}; "
                                  "ids must be unique", stage="dedupe", field=id_field)
            index[rid] = i
        return index

    def _prepare(self, records: Records) -> list[dict[str, np.ndarray]]:
        return [prepare(c, [r.get(c.field) for r in records]) for c in self.config.comparisons]

    def _gamma(self, prep_l, prep_r, li, ri) -> tuple[np.ndarray, np.ndarray]:
        k = len(self.config.comparisons)
        gamma = np.empty((len(li), k), dtype=np.int8)
        scores = np.empty((len(li), k), dtype=np.float64)
        for c, comp in enumerate(self.config.comparisons):
            vec = compare(comp, prep_l[c], prep_r[c], li, ri)
            gamma[:, c], scores[:, c] = vec.levels, vec.scores
        return gamma, scores

    def _pairs(self, left: Records, right: Records | None, rules) -> tuple[np.ndarray, ...]:
        size = self.config.max_block_size
        if right is None:
            return block_pairs(left, rules, size)
        return link_pairs(left, right, rules, size)

    def _candidates(self, left: Records, right: Records | None) -> tuple[np.ndarray, np.ndarray]:
        rules = list(self.config.blocking) + [r.fields for r in self.config.deterministic]
        return self._pairs(left, right, rules)

    def _run(self, left: Records, right: Records | None, rejected) -> MatchResult:
        cfg = self.config
        link = right is not None
        left_ids = self._check_ids(left, "batch")
        right_ids = self._check_ids(right, "existing") if link else left_ids
        if self.params is None:
            self.fit(left, right)
        params = self.params
        other = right if link else left
        n_right = len(other)
        li, ri = self._candidates(left, right)
        codes = pair_codes(li, ri, max(n_right, 1))

        # deterministic rules: first rule that holds names the reason
        rule_of = np.full(len(li), -1, dtype=np.int64)
        for r, rule in reversed(list(enumerate(cfg.deterministic))):
            dl, dr = self._pairs(left, right, [rule.fields])
            rule_of[np.isin(codes, pair_codes(dl, dr, max(n_right, 1)))] = r

        # rejected pairs as (left index, right index); in dedupe mode, ordered
        rejected_idx: list[tuple[int, int]] = []
        for pair in rejected:
            a, b = tuple(pair)
            for x, y in ((a, b), (b, a)):
                if x in left_ids and y in right_ids and (link or x != y):
                    i, j = left_ids[x], right_ids[y]
                    rejected_idx.append((min(i, j), max(i, j)) if not link else (i, j))
        rejected_codes = np.array([i * max(n_right, 1) + j for i, j in rejected_idx],
                                  dtype=np.int64)

        prep_l = self._prepare(left)
        prep_r = self._prepare(other) if link else prep_l
        gamma, scores = self._gamma(prep_l, prep_r, li, ri)
        weight, probability = params.score(gamma)

        th = cfg.thresholds
        decision = np.where(probability >= th.upper, "merge",
                            np.where(probability >= th.lower, "review", "distinct")).astype(object)
        reason = np.full(len(li), "score", dtype=object)
        det = rule_of >= 0
        decision[det] = "merge"
        for r, rule in enumerate(cfg.deterministic):
            reason[rule_of == r] = f"rule:{rule.name}"
        is_rejected = np.isin(codes, rejected_codes)
        decision[is_rejected], reason[is_rejected] = "rejected", "rejected"

        # clustering; link mode puts existing records first so they name clusters
        offset_l = n_right if link else 0
        n_nodes = len(left) + (n_right if link else 0)

        def node_l(i):
            return i + offset_l

        merge = np.flatnonzero(decision == "merge")
        guard = cfg.clustering
        weak_mask = (probability < guard.min_pair_probability) & ~det & ~is_rejected if (
            guard.min_pair_probability is not None) else np.zeros(len(li), dtype=bool)
        weak = list(zip(node_l(li[weak_mask]).tolist(), ri[weak_mask].tolist(), strict=True))
        labels, used = constrained_components(
            n_nodes, node_l(li[merge]), ri[merge], weight[merge], det[merge],
            [(i + offset_l, j) for i, j in rejected_idx], weak, guard.max_cluster_size)
        refused = merge[~used]
        decision[refused], reason[refused] = "review", "chain_guard"
        if len(refused):
            log.info("%s: chain guard refused %d merge pairs (sent to review)",
                     cfg.entity, len(refused))
        clusters = self._clusters(labels, left, other, link, offset_l)
        return MatchResult(mode="link" if link else "dedupe", config=cfg, params=params,
                           left=left, right=other, li=li, ri=ri, gamma=gamma, scores=scores,
                           match_weight=weight, match_probability=probability,
                           decision=decision, reason=reason, clusters=clusters)

    def _clusters(self, labels: np.ndarray, left: Records, other: Records, link: bool,
                  offset_l: int) -> list[Cluster]:
        id_field = self.config.id_field
        sizes = np.bincount(labels, minlength=len(labels))
        members: dict[int, Cluster] = {}
        for node in np.flatnonzero(sizes[labels] >= 2):
            label = int(labels[node])
            if label not in members:
                first = other[label] if link and label < offset_l else left[label - offset_l]
                members[label] = Cluster(cluster_id=first.get(id_field), record_ids=[])
            if link and node < offset_l:
                members[label].existing_ids.append(other[node].get(id_field))
            else:
                members[label].record_ids.append(left[node - offset_l].get(id_field))
        return [members[k] for k in sorted(members)]

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
from crm2erp.quality.dedupe.blocking import Blocking, decode_codes, pair_codes, random_pairs
from crm2erp.quality.dedupe.clustering import constrained_components, plain_components
from crm2erp.quality.dedupe.columns import Columns
from crm2erp.quality.dedupe.comparators import compare, prepare, value_counts
from crm2erp.quality.dedupe.config import MatchConfig
from crm2erp.quality.dedupe.fellegi_sunter import (
    FSParams,
    ImplausibleFit,
    check_plausible,
    estimate_u,
    exact_u,
    expectation_maximisation,
    initial_m,
    tf_adjustment,
)
from crm2erp.quality.dedupe.results import Cluster, MatchResult

log = logging.getLogger(__name__)

Records = Sequence[Mapping[str, Any]]


class Matcher:
    """Deduplicate or link records of one entity under a :class:`MatchConfig`."""

    def __init__(self, config: MatchConfig, params: FSParams | None = None, *,
                 keep_distinct: bool = True, chunk_size: int = 250_000):
        """``keep_distinct=False`` keeps in the result only the pairs a run decided
        something about (review, merge, rule, rejected), not every candidate pair:
        what a million-record run needs. Pairs are scored ``chunk_size`` at a time.
        """
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive number of pairs, not {chunk_size}")
        self.config = config
        self.keep_distinct, self.chunk_size = keep_distinct, chunk_size
        self.params = params or self._configured_params()
        self.fit_warnings: list[str] = []   # of the last fit (check_plausible)
        self.fit_pairs = 0                  # candidate pairs the last fit saw

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
        return self._fit(_Batch(self, records, existing))

    def _fit(self, batch: _Batch) -> FSParams:
        """u from random pairs; m by EM per blocking rule; lambda with m and u fixed.

        EM over all candidate pairs at once tends to split them by what the
        blocking made them share (city, name prefix) instead of by entity.
        So, as Splink does, each blocking rule is one training session on its
        own pairs, in which the comparisons of the rule's fields are left out
        (those pairs agree on them by construction); a comparison's m is the
        mean over the sessions that estimated it. Finally lambda, the share of
        matches among all candidate pairs, is estimated with m and u fixed.
        """
        cfg, em = self.config, self.config.em
        n_levels = [c.n_levels for c in cfg.comparisons]
        # u needs more random pairs for more records, up to u_sample_size
        size = min(em.u_sample_size, 10 * (batch.n_left + (batch.n_right if batch.link else 0)))
        ra, rb = random_pairs(batch.n_left, batch.n_right if batch.link else None,
                              max(size, 10_000), em.seed)
        sample = batch.gamma(ra, rb + batch.offset)[0]
        exact = []
        for c, prep in zip(cfg.comparisons, batch.prepared, strict=True):
            if not (c.exact_level or c.method == "exact"):
                exact.append(None)
                continue
            counts = [value_counts(prep, part) for part in batch.parts()]
            exact.append(exact_u(*counts))
        u = estimate_u(sample, n_levels, exact)
        u = [np.asarray(c.u, dtype=float) if c.u else est
             for c, est in zip(cfg.comparisons, u, strict=True)]
        given = [c.m is not None for c in cfg.comparisons]
        m0 = [np.asarray(c.m, dtype=float) if c.m else initial_m(n)
              for c, n in zip(cfg.comparisons, n_levels, strict=True)]
        bounds = {"max_iterations": em.max_iterations, "tolerance": em.tolerance,
                  "min_lambda": em.min_lambda}
        estimates: list[list[np.ndarray]] = [[] for _ in cfg.comparisons]
        u_estimates: list[list[np.ndarray]] = [[] for _ in cfg.comparisons]
        converged = True
        for rule in em.training_blocking or cfg.blocking:
            li, ri = batch.pairs([rule])
            if len(li) == 0:
                continue
            fields = {e.field for e in rule}
            left_out = [c.field in fields for c in cfg.comparisons]
            gamma = batch.gamma(li, ri + batch.offset)[0]
            gamma[:, left_out] = -1   # a null level: no evidence either way
            session = expectation_maximisation(
                gamma, n_levels, u, m0, 0.1, fix_u=em.fix_u,
                fixed_m=[g or out for g, out in zip(given, left_out, strict=True)], **bounds)
            converged &= session.converged
            seen = (gamma >= 0).any(axis=0)   # a field null in every pair teaches nothing
            for k, out in enumerate(left_out):
                if not (out or given[k]) and seen[k]:
                    estimates[k].append(session.m[k])
                    u_estimates[k].append(session.u[k])
        m, unestimated = [], []
        for k, c in enumerate(cfg.comparisons):
            if given[k] or not estimates[k]:
                if not given[k]:
                    unestimated.append(f"{c.label}: m not estimated (its field is in every "
                                       "blocking rule, or null in every training pair); the "
                                       "starting m is used")
                    log.warning("%s: the m of comparison %s cannot be estimated (its field "
                                "is in every blocking rule, or null in every training pair); "
                                "give m in the configuration", cfg.entity, c.label)
                m.append(m0[k])
                continue
            m.append(np.mean(estimates[k], axis=0))
            if not em.fix_u:
                u[k] = np.mean(u_estimates[k], axis=0)
        li, ri = batch.candidates()
        gamma = batch.gamma(li, ri + batch.offset)[0]
        params = expectation_maximisation(
            gamma, n_levels, u, m, cfg.lambda_ or 0.1, fixed_m=[True] * len(m),
            max_lambda=em.max_lambda, **bounds)
        params.converged &= converged
        if cfg.lambda_ is not None:
            params.lambda_ = float(cfg.lambda_)
        try:
            # only comparisons with evidence behind them (estimated or given) count
            known = [k for k in range(len(m)) if given[k] or estimates[k]]
            warnings = check_plausible(
                FSParams(m=[params.m[k] for k in known], u=[params.u[k] for k in known],
                         lambda_=params.lambda_, iterations=params.iterations,
                         converged=params.converged),
                [cfg.comparisons[k].label for k in known],
                min_lambda=em.min_lambda, max_lambda=em.max_lambda)
        except ImplausibleFit as exc:
            raise ImplausibleFit(f"{cfg.entity}: the estimated matching parameters are "
                                 f"implausible ({exc}); they are not used. Train on more "
                                 "varied records, add blocking rules on names or ids, or "
                                 "give m/u in the configuration") from None
        for warning in warnings:
            log.warning("%s: %s", cfg.entity, warning)
        warnings = unestimated + warnings
        self.params, self.fit_warnings, self.fit_pairs = params, warnings, len(li)
        return params

    def fitted_config(self) -> MatchConfig:
        """The configuration with the estimated m, u and lambda written in (to save as YAML)."""
        if self.params is None:
            raise RuntimeError("fit() the matcher before exporting its parameters")
        comparisons = [c.model_copy(update={"m": [_sig(x) for x in m], "u": [_sig(x) for x in u]})
                       for c, m, u in zip(self.config.comparisons, self.params.m, self.params.u,
                                          strict=True)]
        return self.config.model_copy(update={"comparisons": comparisons,
                                              "lambda_": _sig(self.params.lambda_)})

    # -- public runs --------------------------------------------------------------------
    def dedupe(self, records: Records, *, rejected: Iterable[Collection[Any]] = ()) -> MatchResult:
        """Find duplicates within one batch of records."""
        return self._run(records, None, rejected)

    def link(self, records: Records, existing: Records, *,
             rejected: Iterable[Collection[Any]] = ()) -> MatchResult:
        """Match a new batch against existing records (pairs are (batch, existing))."""
        return self._run(records, existing, rejected)

    def explain(self, records: Records, a: int, b: int) -> MatchResult:
        """Score the one pair ``records[a]``, ``records[b]`` whether blocking pairs them or not.

        Term-frequency adjustments are counted over all ``records``. The
        result holds one pair; ``result.pairs(None)[0].fields`` has each
        comparison's level and weight.
        """
        if self.params is None:
            raise RuntimeError("explain() needs parameters: fit() or give m/u/lambda")
        batch = _Batch(self, records, None)
        li, ri = np.array([a], dtype=np.int64), np.array([b], dtype=np.int64)
        gamma, scores = batch.gamma(li, ri)
        weight, probability = self.params.score(gamma)
        adjustment = batch.tf_adjustment(li, ri, gamma)
        if adjustment is not None:
            weight = weight + adjustment.sum(axis=1)
            probability = 1.0 / (1.0 + np.exp2(-np.clip(weight, -1000, 1000)))
        th = self.config.thresholds
        decision = np.array(["merge" if probability[0] >= th.upper else "review"
                             if probability[0] >= th.lower else "distinct"], dtype=object)
        return MatchResult(mode="dedupe", config=self.config, params=self.params,
                           left=records, right=records, li=li, ri=ri, gamma=gamma,
                           scores=scores, match_weight=weight, match_probability=probability,
                           decision=decision, reason=np.array(["score"], dtype=object),
                           clusters=[], tf_adjustment=adjustment)

    # -- internals ------------------------------------------------------------------------
    def _run(self, left: Records, right: Records | None, rejected) -> MatchResult:
        cfg = self.config
        batch = _Batch(self, left, right)
        if self.params is None:
            self._fit(batch)
        params = self.params
        link, n_right = batch.link, batch.n_right
        li, ri = batch.candidates()
        batch.release_columns()   # blocking is done: the transformed columns are not needed
        rejected_idx = batch.rejected_pairs(rejected)
        rejected_codes = np.array([i * max(n_right, 1) + j for i, j in rejected_idx],
                                  dtype=np.int64)
        guard, th = cfg.clustering, cfg.thresholds
        # scored in chunks: only the kept pairs' arrays outlive their chunk
        kept: list[dict[str, np.ndarray]] = []
        weak_all = np.zeros(len(li), dtype=bool)
        for start in range(0, len(li), self.chunk_size):
            a, b = li[start:start + self.chunk_size], ri[start:start + self.chunk_size]
            codes = pair_codes(a, b, n_right)
            # deterministic rules: the first rule that holds names the reason
            rule_of = np.full(len(a), -1, dtype=np.int16)
            for r in range(len(cfg.deterministic) - 1, -1, -1):
                rule_of[np.isin(codes, batch.rule_codes[r])] = r
            is_rejected = np.isin(codes, rejected_codes)
            del codes
            gamma, scores = batch.gamma(a, b + batch.offset)
            weight, probability = params.score(gamma)
            adjustment = batch.tf_adjustment(a, b + batch.offset, gamma)
            if adjustment is not None:
                weight = weight + adjustment.sum(axis=1)
                probability = 1.0 / (1.0 + np.exp2(-np.clip(weight, -1000, 1000)))
            det = rule_of >= 0
            if guard.min_pair_probability is not None:
                weak_all[start:start + len(a)] = ((probability < guard.min_pair_probability)
                                                  & ~det & ~is_rejected)
            keep = slice(None) if self.keep_distinct else np.flatnonzero(
                (probability >= th.lower) | det | is_rejected)
            kept.append({"li": a[keep], "ri": b[keep], "gamma": gamma[keep],
                         "scores": scores[keep], "weight": weight[keep],
                         "probability": probability[keep], "rule_of": rule_of[keep],
                         "rejected": is_rejected[keep],
                         "adjustment": None if adjustment is None else adjustment[keep]})
            del gamma, scores, weight, probability, adjustment
        n_candidates = len(li)
        kept_li, kept_ri = _joined(kept, "li", np.int32), _joined(kept, "ri", np.int32)
        gamma = _joined(kept, "gamma", np.int8, (len(cfg.comparisons),))
        scores = _joined(kept, "scores", np.float64, (len(cfg.comparisons),))
        weight = _joined(kept, "weight", np.float64)
        probability = _joined(kept, "probability", np.float64)
        rule_of = _joined(kept, "rule_of", np.int16)
        is_rejected = _joined(kept, "rejected", bool)
        adjustment = (None if batch.tf_adjustment_off else
                      _joined(kept, "adjustment", np.float64, (len(cfg.comparisons),)))
        del kept
        det = rule_of >= 0
        # object arrays share the three strings (np.where(...).astype(object) made one per pair)
        decision = np.full(len(kept_li), "distinct", dtype=object)
        decision[probability >= th.lower] = "review"
        decision[probability >= th.upper] = "merge"
        reason = np.full(len(kept_li), "score", dtype=object)
        decision[det] = "merge"
        for r, rule in enumerate(cfg.deterministic):
            reason[rule_of == r] = f"rule:{rule.name}"
        decision[is_rejected], reason[is_rejected] = "rejected", "rejected"
        if link and cfg.link == "one_to_one":
            ids = [np.array([str(rid) for rid in _ids(side, cfg.id_field)])
                   for side in (batch.left, batch.right)]
            _one_to_one(ids[0][kept_li], ids[1][kept_ri], weight, det, decision, reason)

        # clustering nodes: link mode puts existing records first so they name clusters
        shift = n_right if link else 0
        merge = np.flatnonzero(decision == "merge")
        weak_mask = np.zeros(len(li), dtype=bool)
        if guard.min_pair_probability is not None:
            # a weak pair can only end up in one cluster when both of its records are in
            # one component of the merge pairs: the others (nearly all candidate pairs)
            # need not be handed to the guard (as Python tuples and sets)
            component = plain_components(batch.n_left + shift, kept_li[merge] + shift,
                                         kept_ri[merge])
            for start in range(0, len(li), self.chunk_size):   # no pair-sized temporaries
                part = slice(start, start + self.chunk_size)
                weak_mask[part] = weak_all[part] & (component[li[part] + shift]
                                                    == component[ri[part]])
        del weak_all
        weak = list(zip((li[weak_mask] + shift).tolist(), ri[weak_mask].tolist(), strict=True))
        del weak_mask
        labels, used = constrained_components(
            batch.n_left + shift, kept_li[merge] + shift, kept_ri[merge], weight[merge],
            det[merge], [(i + shift, j) for i, j in rejected_idx], weak,
            guard.max_cluster_size)
        refused = merge[~used]
        decision[refused], reason[refused] = "review", "chain_guard"
        if len(refused):
            log.info("%s: chain guard refused %d merge pairs (sent to review)",
                     cfg.entity, len(refused))
        return MatchResult(mode="link" if link else "dedupe", config=cfg, params=params,
                           left=batch.left, right=batch.right, li=kept_li, ri=kept_ri,
                           gamma=gamma, scores=scores, match_weight=weight,
                           match_probability=probability, decision=decision, reason=reason,
                           clusters=self._clusters(labels, batch, shift),
                           tf_adjustment=adjustment, candidate_pairs=n_candidates)

    def _clusters(self, labels: np.ndarray, batch: _Batch, shift: int) -> list[Cluster]:
        id_field = self.config.id_field
        sizes = np.bincount(labels, minlength=len(labels))
        nodes = np.flatnonzero(sizes[labels] >= 2)
        if not len(nodes):
            return []
        # clustering nodes: existing records (link mode) first, then the batch
        ids = np.empty(len(labels), dtype=object)
        ids[:] = (_ids(batch.right, id_field) if shift else []) + _ids(batch.left, id_field)
        members: dict[int, Cluster] = {}
        for node, rid, label in zip(nodes.tolist(), ids[nodes].tolist(),
                                    labels[nodes].tolist(), strict=True):
            if label not in members:   # a cluster is named by its label's record
                members[label] = Cluster(cluster_id=ids[label], record_ids=[])
            if node < shift:
                members[label].existing_ids.append(rid)
            else:
                members[label].record_ids.append(rid)
        return [members[k] for k in sorted(members)]


class _Batch:
    """One run's records with everything computed once: prepared fields, pairs, rules.

    Link mode concatenates ``left + right`` for field preparation, so values
    share one code space; pair indices stay per side (``right`` offset by
    ``offset`` when indexing prepared arrays).
    """

    def __init__(self, matcher: Matcher, left: Records, right: Records | None):
        self.config = cfg = matcher.config
        self.link = right is not None
        self.left = left
        self.right = right if right is not None else left
        self.n_left, self.n_right = len(left), len(self.right)
        self.offset = self.n_left if self.link else 0
        _check_ids(cfg, left, "batch")
        if self.link:
            _check_ids(cfg, right, "existing")
        self.columns = Columns(left, right) if self.link else Columns(left)
        self.prepared = [prepare(c, self.columns.values(c.field, c.transforms),
                                 self.columns.values(c.region_field, []) if c.region_field
                                 else None)
                         for c in cfg.comparisons]
        self._blocking: Blocking | None = None
        self._candidates: tuple[np.ndarray, np.ndarray] | None = None
        self.rule_codes: list[np.ndarray] = []
        self._counts: dict[int, np.ndarray] = {}   # value counts of tf-adjusted comparisons

    def release_columns(self) -> None:
        """Free the blocking keys' codes (the prepared comparisons stay)."""
        self.columns.release()
        self._blocking = None

    @property
    def tf_adjustment_off(self) -> bool:
        return not any(c.tf_adjustment for c in self.config.comparisons)

    def parts(self) -> list[slice]:
        return [slice(0, self.n_left), slice(self.n_left, None)] if self.link else [slice(None)]

    def blocking(self) -> Blocking:
        """Blocking over this run's records; oversized blocks sorted by the first comparison."""
        if self._blocking is None:
            cfg = self.config
            first = cfg.comparisons[0]
            self._blocking = Blocking(
                self.columns, self.n_left, self.n_right, self.link, cfg.max_block_size,
                cfg.window, sort_key=self.columns.factorised(first.field, first.transforms))
        return self._blocking

    def pairs(self, rules) -> tuple[np.ndarray, np.ndarray]:
        """Pairs sharing a key under any rule; oversized blocks in sorted windows."""
        return decode_codes(self.blocking().codes(rules), self.n_right)

    def candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """Blocked pairs unioned with the deterministic rules' pairs (computed once).

        Indices are int32 when the records allow: they are the biggest arrays of a run.
        """
        if self._candidates is None:
            blocking = self.blocking()
            self.rule_codes = [blocking.codes([rule.fields]) for rule in self.config.deterministic]
            self._candidates = blocking.pairs(self.config.blocking, self.rule_codes)
        return self._candidates

    def gamma(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Levels and raw scores of pairs given as indices into the prepared arrays."""
        k = len(self.config.comparisons)
        gamma = np.empty((len(a), k), dtype=np.int8)
        scores = np.empty((len(a), k), dtype=np.float64)
        for c, comp in enumerate(self.config.comparisons):
            gamma[:, c], scores[:, c] = compare(comp, self.prepared[c], a, b)
        return gamma, scores

    def tf_adjustment(self, a: np.ndarray, b: np.ndarray, gamma: np.ndarray,
                      ) -> np.ndarray | None:
        """Term-frequency bits per pair and comparison (exact level only), or None."""
        comparisons = self.config.comparisons
        if self.tf_adjustment_off:
            return None
        out = np.zeros(gamma.shape, dtype=np.float64)
        for k, c in enumerate(comparisons):
            if not c.tf_adjustment or not (c.exact_level or c.method == "exact"):
                continue
            prep = self.prepared[k]
            exact = gamma[:, k] == 0
            if k not in self._counts:
                self._counts[k] = value_counts(prep)
            out[exact, k] = tf_adjustment(self._counts[k], prep.codes[a[exact]])
        return out

    def rejected_pairs(self, rejected: Iterable[Collection[Any]]) -> list[tuple[int, int]]:
        """Rejected id pairs as (left index, right index); ordered in dedupe mode."""
        pairs = [tuple(pair) for pair in rejected]
        pairs = [ids for ids in pairs if len(ids) == 2]
        wanted = {rid for ids in pairs for rid in ids}
        if not wanted:
            return []
        id_field = self.config.id_field
        left_ids = {rid: i for i, rid in enumerate(_ids(self.left, id_field)) if rid in wanted}
        right_ids = ({rid: i for i, rid in enumerate(_ids(self.right, id_field))
                      if rid in wanted} if self.link else left_ids)
        out = []
        for ids in pairs:
            for x, y in (ids, ids[::-1]):
                i, j = left_ids.get(x), right_ids.get(y)
                if i is None or j is None or (not self.link and i == j):
                    continue
                out.append((i, j) if self.link else (min(i, j), max(i, j)))
        return out


def _one_to_one(li: np.ndarray, ri: np.ndarray, weight: np.ndarray, det: np.ndarray,
                decision: np.ndarray, reason: np.ndarray) -> None:
    """Keep, per record of either side, only its best merge pair; the others become distinct.

    ``li`` / ``ri`` are the pairs' record ids. Greedy, best first: deterministic
    rules before scores, then by match weight, ties by ids (so the result does
    not depend on input order).
    """
    merge = np.flatnonzero(decision == "merge")
    order = merge[np.lexsort((ri[merge], li[merge], -weight[merge], ~det[merge]))]
    left_used: set[str] = set()
    right_used: set[str] = set()
    for k in order.tolist():
        a, b = li[k], ri[k]
        if a in left_used or b in right_used:
            decision[k], reason[k] = "distinct", "one_to_one"
            continue
        left_used.add(a)
        right_used.add(b)


def _joined(parts: list[dict[str, np.ndarray]], key: str, dtype: Any,
            shape: tuple[int, ...] = ()) -> np.ndarray:
    """One array of the chunks' ``key`` arrays (an empty one of ``dtype`` without chunks)."""
    arrays = [p[key] for p in parts]
    if not arrays:
        return np.empty((0, *shape), dtype=dtype)
    return np.concatenate(arrays).astype(dtype, copy=False)


def _sig(value: float) -> float:
    """Seven significant digits: readable YAML, no tiny probability rounded to 0."""
    return float(f"{float(value):.7g}")


def _ids(records: Records, id_field: str) -> list[Any]:
    """Every record's id (read as one column when the records are held column-wise)."""
    values_of = getattr(records, "values_of", None)
    return values_of(id_field) if values_of else [r.get(id_field) for r in records]


def _check_ids(cfg: MatchConfig, records: Records, side: str) -> None:
    """Raise RecordError for a missing or repeated id (nothing is kept: ids are read again
    where needed)."""
    id_field, seen = cfg.id_field, set()
    for i, rid in enumerate(_ids(records, id_field)):
        if rid is None:
            raise RecordError(f"{side} record #{i} of {cfg.entity} has no {id_field!r}; "
                              "give every record a unique id", stage="dedupe", field=id_field)
        if rid in seen:
            raise RecordError(f"{side} records of {cfg.entity} repeat id {rid!r}; ids must "
                              "be unique", stage="dedupe", field=id_field)
        seen.add(rid)

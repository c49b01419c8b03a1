"""Fellegi-Sunter scoring and unsupervised parameter estimation.

For each comparison level, ``m`` is the probability of that level among true
matches and ``u`` among non-matches; a pair's *match weight* is
``log2(lambda / (1 - lambda)) + sum(log2(m / u))`` over its levels (null levels
add nothing) and its *match probability* ``2**w / (1 + 2**w)``.

No labels are needed (Splink's recipe): ``u`` comes from uniform random pairs,
which are almost all non-matches; ``m`` and ``lambda`` (the share of matches
among the candidate pairs) come from expectation-maximisation over the
candidate pairs with ``u`` held fixed. EM runs on the distinct gamma patterns
with their counts, so it costs the same for 10^4 or 10^7 pairs.
"""

from __future__ import annotations

__all__ = ["FSParams", "estimate_u", "exact_u", "expectation_maximisation", "initial_m"]

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

_EPS = 1e-6


@dataclass
class FSParams:
    """m and u per comparison (one array per comparison, one value per level) and lambda."""

    m: list[np.ndarray]
    u: list[np.ndarray]
    lambda_: float
    iterations: int = 0

    def level_weights(self) -> list[np.ndarray]:
        """log2(m/u) per level, with a trailing 0 at index -1 for the null level."""
        return [np.append(np.log2(m / u), 0.0) for m, u in zip(self.m, self.u, strict=True)]

    def field_weights(self, gamma: np.ndarray) -> np.ndarray:
        """Per-pair, per-comparison weights (n_pairs x n_comparisons)."""
        out = np.empty(gamma.shape, dtype=np.float64)
        for k, table in enumerate(self.level_weights()):
            out[:, k] = table[gamma[:, k]]
        return out

    def score(self, gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Match weight and match probability of every pair."""
        prior = np.log2(self.lambda_ / (1 - self.lambda_))
        weight = prior + self.field_weights(gamma).sum(axis=1)
        probability = 1.0 / (1.0 + np.exp2(-np.clip(weight, -1000, 1000)))
        return weight, probability


def _normalise(p: np.ndarray) -> np.ndarray:
    """Counts or weights to probabilities, none below 1e-6 (no infinite weights)."""
    total = p.sum()
    p = np.clip(p / total if total > 0 else np.ones_like(p) / len(p), _EPS, None)
    return p / p.sum()


def exact_u(counts_left: np.ndarray, counts_right: np.ndarray | None = None) -> float:
    """u of the exact level computed from value frequencies, without sampling.

    Dedupe: the chance that two distinct random records share a value,
    ``sum(c * (c - 1)) / (N * (N - 1))``; link: ``sum(cl * cr) / (Nl * Nr)``.
    """
    if counts_right is None:
        n = counts_left.sum()
        same = float((counts_left * (counts_left - 1.0)).sum())
        return same / (n * (n - 1.0)) if n > 1 else 0.0
    pairs = float(counts_left.sum()) * float(counts_right.sum())
    return float((counts_left * counts_right.astype(float)).sum()) / pairs if pairs else 0.0


def estimate_u(gamma: np.ndarray, n_levels: list[int],
               exact: list[float | None] | None = None) -> list[np.ndarray]:
    """u per level from random pairs (almost all non-matches), non-null pairs only.

    When ``exact[k]`` is given (level 0 = exact agreement, computed from the
    value frequencies), the sample only spreads the remaining ``1 - exact[k]``
    over the lower levels: far more precise for rare values than counting.
    """
    exact = exact or [None] * len(n_levels)
    out = []
    for k, n in enumerate(n_levels):
        col = gamma[:, k]
        col = col[col >= 0]
        if exact[k] is None:
            # add-one smoothing keeps a level never seen at random from u = 0
            out.append(_normalise(np.bincount(col, minlength=n) + 1.0))
            continue
        rest = np.bincount(col[col > 0] - 1, minlength=n - 1) + 1.0
        u_exact = min(max(exact[k], _EPS), 1 - _EPS)
        out.append(_normalise(np.append(u_exact, (1 - u_exact) * rest / rest.sum())))
    return out


def initial_m(n: int) -> np.ndarray:
    """A starting m that favours the best levels; EM moves it from there."""
    if n == 1:
        return np.ones(1)
    head = 0.5 ** np.arange(n - 1)
    return _normalise(np.append(0.95 * head / head.sum(), 0.05))


def _log_table(probs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.append(np.log(p), 0.0) for p in probs]  # index -1 (null) -> log 1


def _pattern_log(patterns: np.ndarray, tables: list[np.ndarray]) -> np.ndarray:
    total = np.zeros(len(patterns))
    for k, table in enumerate(tables):
        total += table[patterns[:, k]]
    return total


def expectation_maximisation(gamma: np.ndarray, n_levels: list[int], u: list[np.ndarray],
                             m: list[np.ndarray] | None = None, lambda_: float = 0.1, *,
                             fix_u: bool = True, fixed_m: list[bool] | None = None,
                             max_iterations: int = 50, tolerance: float = 1e-5) -> FSParams:
    """Estimate m and lambda (and u unless ``fix_u``) from unlabelled candidate pairs.

    ``fixed_m[k]`` keeps comparison k's starting m (given in the configuration).
    """
    fixed_m = fixed_m or [False] * len(n_levels)
    m = [initial_m(n) for n in n_levels] if m is None else [x.copy() for x in m]
    u = [x.copy() for x in u]
    if len(gamma) == 0:
        return FSParams(m=m, u=u, lambda_=lambda_)
    patterns, counts = np.unique(gamma, axis=0, return_counts=True)
    counts = counts.astype(np.float64)
    iteration = 0
    while iteration < max_iterations:
        iteration += 1
        lm = _pattern_log(patterns, _log_table(m)) + np.log(lambda_)
        lu = _pattern_log(patterns, _log_table(u)) + np.log1p(-lambda_)
        p = 1.0 / (1.0 + np.exp(np.clip(lu - lm, -700, 700)))
        wm, wu = counts * p, counts * (1 - p)
        new_lambda = float(np.clip(wm.sum() / counts.sum(), _EPS, 1 - _EPS))
        new_m, new_u = [], []
        for k, n in enumerate(n_levels):
            col = patterns[:, k]
            ok = col >= 0
            if fixed_m[k]:
                new_m.append(m[k])
            else:
                new_m.append(_normalise(np.bincount(col[ok], weights=wm[ok], minlength=n)))
            if not fix_u:
                new_u.append(_normalise(np.bincount(col[ok], weights=wu[ok], minlength=n)))
        change = max(abs(new_lambda - lambda_),
                     max(float(np.abs(a - b).max()) for a, b in zip(new_m, m, strict=True)))
        m, lambda_ = new_m, new_lambda
        if not fix_u:
            u = new_u
        if change < tolerance:
            break
    log.info("EM stopped after %d iterations, lambda=%.5f", iteration, lambda_)
    return FSParams(m=m, u=u, lambda_=lambda_, iterations=iteration)

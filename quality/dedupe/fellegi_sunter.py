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

EM without constraints finds *some* two-class split of the candidate pairs,
not necessarily "same entity": on accounts blocked by city it happily learns
"same city and postcode = same company", and on people that a *disagreeing*
surname is evidence of a match. Three guards keep it honest:

* monotone agreement: after every M-step, m/u is made non-increasing from the
  best level to ``else`` (pool-adjacent-violators, weighted by u), every
  agreement level keeps ``m >= u`` and ``else`` keeps ``m <= u``;
* lambda stays within ``[min_lambda, max_lambda]``;
* :func:`check_plausible` refuses a fit whose lambda sits on its ceiling or
  in which no comparison separates matches from non-matches.
"""

from __future__ import annotations

__all__ = [
    "FSParams", "ImplausibleFit", "check_plausible", "estimate_u", "exact_u",
    "expectation_maximisation", "initial_m", "monotone_m", "tf_adjustment",
]

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

_EPS = 1e-6
# no level is rarer than 1 in 1000 among matches: one odd field (a new street number,
# a typo'd postcode) costs at most ~10 bits instead of vetoing a match outright
_M_FLOOR = 1e-3


class ImplausibleFit(ValueError):
    """EM produced parameters no real data would: they must not be used."""


@dataclass
class FSParams:
    """m and u per comparison (one array per comparison, one value per level) and lambda."""

    m: list[np.ndarray]
    u: list[np.ndarray]
    lambda_: float
    iterations: int = 0
    converged: bool = True

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


def _normalise(p: np.ndarray, floor: float = _EPS) -> np.ndarray:
    """Counts or weights to probabilities, none below ``floor`` (no infinite weights)."""
    total = p.sum()
    p = np.clip(p / total if total > 0 else np.ones_like(p) / len(p), floor, None)
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


def tf_adjustment(counts: np.ndarray, codes: np.ndarray, limit: float = 10.0) -> np.ndarray:
    """Bits to add to an exact agreement on each value (``codes``), from value counts.

    Exact agreement on a value ``c`` records share is about ``c - 1`` times as
    likely by chance as on a value only the pair holds. The adjustment is
    ``-log2((c - 1) / E)``, with ``E`` the mean ``c - 1`` over all agreeing
    pairs, so an average agreement keeps its fitted weight, a common value
    ("Berlin", "Müller") weighs less and a rare one more; clipped to
    ``±limit`` bits. Relative counts need no training table: a two-record
    batch gets no adjustment at all.
    """
    counts = counts.astype(np.float64)
    agreeing = counts * (counts - 1)
    if agreeing.sum() <= 0:
        return np.zeros(len(codes))
    mean = float((agreeing * (counts - 1)).sum() / agreeing.sum())
    others = np.maximum(counts[codes] - 1, 1.0)
    return np.clip(-np.log2(others / mean), -limit, limit)


def initial_m(n: int) -> np.ndarray:
    """A starting m that favours the best levels; EM moves it from there."""
    if n == 1:
        return np.ones(1)
    head = 0.5 ** np.arange(n - 1)
    return _normalise(np.append(0.95 * head / head.sum(), 0.05))


def _decreasing(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted isotonic regression to a non-increasing sequence (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, length]
    for v, w in zip(values.tolist(), weights.tolist(), strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks[-1]
            blocks[-1] = [(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2]
    return np.array([b[0] for b in blocks for _ in range(b[2])])


def monotone_m(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """m made consistent with the level order: m/u non-increasing, agreement levels m >= u.

    Levels run best first with ``else`` last, so a better level may never be
    weaker evidence than a worse one, an agreement level never counts against
    a match and ``else`` never for one.
    """
    if len(m) < 2:
        return m
    ratio = _decreasing(m / u, u)
    ratio[:-1] = np.maximum(ratio[:-1], 1.0)
    head = ratio[:-1] * u[:-1]
    floor = min(_M_FLOOR, u[-1])   # else keeps m >= the floor where m <= u allows
    room = 1 - floor - u[:-1].sum()
    if head.sum() > 1 - floor:
        # shrink the excess over u (an affine map of the ratios: order and m >= u kept);
        # with no room left (u of else below the floor) m is u: no evidence either way
        excess = head.sum() - u[:-1].sum()
        head = u[:-1] + (head - u[:-1]) * (max(room, 0.0) / excess if excess > 0 else 0.0)
    return np.append(head, max(1.0 - head.sum(), _EPS))


def check_plausible(params: FSParams, labels: list[str], *, min_lambda: float = _EPS,
                    max_lambda: float = 1 - _EPS) -> list[str]:
    """Raise :class:`ImplausibleFit` for a fit that must not be used; return warnings.

    Refused: lambda on its ceiling (EM calls most candidate pairs matches, so
    it found "same block", not "same entity"), or no comparison whose best
    level is worth at least 1 bit (nothing tells matches apart). Warned:
    lambda on its floor, EM not converged, or a comparison without evidence.
    """
    problems, warnings = [], []
    if params.lambda_ >= max_lambda * (1 - 1e-3):
        problems.append(f"the match rate among candidate pairs went to its ceiling "
                        f"{max_lambda:g}: EM took 'same block' for 'same entity'")
    best = [float(np.log2(m[0] / u[0])) for m, u in zip(params.m, params.u, strict=True)]
    if max(best, default=0.0) < 1.0:
        problems.append("no comparison's best level is worth 1 bit: nothing separates "
                        "matches from non-matches")
    if problems:
        raise ImplausibleFit("; ".join(problems))
    if params.lambda_ <= min_lambda * (1 + 1e-3):
        warnings.append(f"the match rate among candidate pairs went to its floor {min_lambda:g}:"
                        " EM found (almost) no matches")
    if not params.converged:
        warnings.append(f"EM did not converge in {params.iterations} iterations")
    warnings += [f"{label}: the best level is worth only {w:.2f} bits (no evidence)"
                 for label, w in zip(labels, best, strict=True) if w < 0.5]
    return warnings


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
                             max_iterations: int = 50, tolerance: float = 1e-5,
                             min_lambda: float = _EPS, max_lambda: float = 1 - _EPS,
                             monotone: bool = True) -> FSParams:
    """Estimate m and lambda (and u unless ``fix_u``) from unlabelled candidate pairs.

    ``fixed_m[k]`` keeps comparison k's starting m (given in the configuration).
    With ``monotone`` every estimated m goes through :func:`monotone_m`;
    lambda is clipped to ``[min_lambda, max_lambda]``.
    """
    fixed_m = fixed_m or [False] * len(n_levels)
    m = [initial_m(n) for n in n_levels] if m is None else [x.copy() for x in m]
    u = [x.copy() for x in u]
    if len(gamma) == 0:
        return FSParams(m=m, u=u, lambda_=lambda_)
    patterns, counts = np.unique(gamma, axis=0, return_counts=True)
    counts = counts.astype(np.float64)
    iteration, converged = 0, False
    lambda_ = float(np.clip(lambda_, min_lambda, max_lambda))
    while iteration < max_iterations:
        iteration += 1
        lm = _pattern_log(patterns, _log_table(m)) + np.log(lambda_)
        lu = _pattern_log(patterns, _log_table(u)) + np.log1p(-lambda_)
        p = 1.0 / (1.0 + np.exp(np.clip(lu - lm, -700, 700)))
        wm, wu = counts * p, counts * (1 - p)
        new_lambda = float(np.clip(wm.sum() / counts.sum(), min_lambda, max_lambda))
        new_m, new_u = [], []
        for k, n in enumerate(n_levels):
            col = patterns[:, k]
            ok = col >= 0
            if fixed_m[k]:
                new_m.append(m[k])
            else:
                new_m.append(_normalise(np.bincount(col[ok], weights=wm[ok], minlength=n),
                                        _M_FLOOR))
            if not fix_u:
                new_u.append(_normalise(np.bincount(col[ok], weights=wu[ok], minlength=n)))
            if monotone and not fixed_m[k]:
                new_m[k] = monotone_m(new_m[k], new_u[k] if not fix_u else u[k])
        change = max(abs(new_lambda - lambda_),
                     max(float(np.abs(a - b).max()) for a, b in zip(new_m, m, strict=True)))
        m, lambda_ = new_m, new_lambda
        if not fix_u:
            u = new_u
        if change < tolerance:
            converged = True
            break
    log.info("EM stopped after %d iterations (%s), lambda=%.5f", iteration,
             "converged" if converged else "not converged", lambda_)
    return FSParams(m=m, u=u, lambda_=lambda_, iterations=iteration, converged=converged)

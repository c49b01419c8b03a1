"""Vectorised field comparisons: from candidate pairs to comparison levels.

A comparison turns the two values of every candidate pair into a *level*
(``0`` = best, e.g. exact; ``-1`` = null on either side) and a raw score to
show in a review UI (a similarity, a distance in edits or days...).

Values are prepared once per record (transforms, parsing, phonetic codes) and
*factorised* into integer codes, so nulls and exact agreement are numpy
comparisons of codes; similarities run in C through
``rapidfuzz.process.cpdist``, and only for the pairs that are neither null nor
exact. Nothing loops over pairs in Python.
"""

from __future__ import annotations

__all__ = ["Prepared", "prepare", "compare", "value_counts"]

from dataclasses import dataclass, field
from typing import Any

import jellyfish
import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein, Jaro, JaroWinkler, Levenshtein
from rapidfuzz.process import cpdist

from crm2erp.quality.dedupe.columns import factorise
from crm2erp.quality.dedupe.config import SIMILARITY_METHODS, Comparison
from crm2erp.quality.dedupe.transforms import (
    apply,
    clean,
    normalise_phone,
    region_code,
    to_date,
)

_SCORERS = {
    "jaro_winkler": JaroWinkler.normalized_similarity,
    "jaro": Jaro.normalized_similarity,
    "ratio": fuzz.ratio,
    "token_set": fuzz.token_set_ratio,
    "levenshtein": Levenshtein.distance,
    "damerau_levenshtein": DamerauLevenshtein.distance,
}
_PERCENT = {"ratio", "token_set"}
_EDIT = {"levenshtein", "damerau_levenshtein"}
_PHONETIC = {"soundex": jellyfish.soundex, "metaphone": jellyfish.metaphone,
             "nysiis": jellyfish.nysiis}


@dataclass
class Prepared:
    """One comparison's field for all records: ``int32`` codes (-1 = null) of ``n_values``
    distinct values; ``uniques`` holds them for the methods that score strings (else None).

    ``extra`` holds secondary codes (phonetic code, e-mail domain, phone
    suffixes: one array per threshold) and ``numbers`` the parsed value of
    numeric and date fields (days since year 1 for dates; NaN = null).
    """

    codes: np.ndarray
    n_values: int
    uniques: np.ndarray | None = None
    extra: list[np.ndarray] = field(default_factory=list)
    numbers: np.ndarray | None = None


def _number(value: Any) -> float | None:
    text = clean(value)
    if text is None:
        return None
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def prepare(comparison: Comparison, values: list[Any],
            regions: list[str | None] | None = None) -> Prepared:
    """Parse and factorise one field of all records (once per run).

    ``values`` are the field's values with the comparison's transforms applied;
    ``regions`` the records' countries for ``phone`` (``region_field``).
    """
    method = comparison.method
    extra: list[list[Any]] = []
    numbers = None
    if method == "phonetic":
        code = _PHONETIC[comparison.phonetic]
        extra.append([code(v) or None if v else None for v in values])
    elif method == "email_domain":
        values = [v.lower() if v else None for v in values]
        extra.append([v.rpartition("@")[2] or None if v and "@" in v else None for v in values])
    elif method == "phone":
        regions = regions or [None] * len(values)
        values = [normalise_phone(v, region_code(r) or comparison.default_region) if v else None
                  for v, r in zip(values, regions, strict=True)]
        digits = [v.lstrip("+") if v else None for v in values]
        for t in comparison.thresholds:
            k = int(t)
            extra.append([d[-k:] if d and len(d) >= k else None for d in digits])
    elif method == "tax_id":
        values = apply(values, ["tax_id"])
    elif method == "numeric":
        values = [_number(v) for v in values]
        numbers = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    elif method == "date":
        values = [to_date(v) for v in values]
        numbers = np.array([np.nan if d is None else d.toordinal() for d in values],
                           dtype=np.float64)
    column = factorise(values)
    del values
    scored = method in SIMILARITY_METHODS or method in _EDIT
    return Prepared(codes=column.codes, n_values=len(column.uniques),
                    uniques=column.uniques if scored else None,
                    extra=[factorise(e).codes for e in extra], numbers=numbers)


def value_counts(prepared: Prepared, part: slice = slice(None)) -> np.ndarray:
    """How many records (of ``part``) hold each unique value (exact-level u, no sampling)."""
    codes = prepared.codes[part]
    return np.bincount(codes[codes >= 0], minlength=prepared.n_values)


def _similarity(comparison: Comparison, prepared: Prepared, ca: np.ndarray, cb: np.ndarray,
                ) -> np.ndarray:
    scorer = _SCORERS[comparison.method]
    if len(ca) == 0:
        return np.empty(0)
    u = prepared.uniques
    if len(u) * len(u) <= 4 * len(ca):
        # low-cardinality fields repeat the same value pairs: score each pair once
        pair = ca.astype(np.int64) * len(u) + cb
        distinct, inverse = np.unique(pair, return_inverse=True)
        left, right = u[distinct // len(u)], u[distinct % len(u)]
        raw = np.asarray(cpdist(left, right, scorer=scorer, dtype=np.float64))[inverse]
    else:
        raw = np.asarray(cpdist(u[ca], u[cb], scorer=scorer, dtype=np.float64))
    if comparison.method in _PERCENT:
        raw = raw / 100.0
    return raw


def compare(comparison: Comparison, prepared: Prepared, a: np.ndarray, b: np.ndarray,
            ) -> tuple[np.ndarray, np.ndarray]:
    """Levels (int8, -1 = null) and raw scores (NaN = null) of pairs ``(a[k], b[k])``."""
    method = comparison.method
    n = len(a)
    ca, cb = prepared.codes[a], prepared.codes[b]
    null = (ca < 0) | (cb < 0)
    exact = (ca == cb) & ~null
    scores = np.where(exact, 1.0, 0.0)
    masks: list[np.ndarray] = []  # candidate levels, best first; the first true one wins
    if comparison.exact_level or method == "exact":
        masks.append(exact)
    thresholds = comparison.thresholds
    if method in SIMILARITY_METHODS or method in _EDIT:
        if method in _EDIT:
            scores = np.where(exact, 0.0, np.nan)
        todo = ~null & ~exact
        scores[todo] = _similarity(comparison, prepared, ca[todo], cb[todo])
        if method in SIMILARITY_METHODS:
            masks.extend(exact | (scores >= t) for t in thresholds)
        else:
            masks.extend(exact | (scores <= t) for t in thresholds)
    elif method in ("numeric", "date"):
        x, y = prepared.numbers[a], prepared.numbers[b]
        diff = np.abs(x - y)
        if comparison.relative:
            scale = np.maximum(np.abs(x), np.abs(y))
            diff = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
        scores = diff
        masks.extend(diff <= t for t in thresholds)
    elif method in ("phonetic", "email_domain", "phone"):
        for extra in prepared.extra:
            ea, eb = extra[a], extra[b]
            masks.append((ea == eb) & (ea >= 0))
        if method != "phone":
            scores = np.where(exact, 1.0, np.where(masks[-1], 0.5, 0.0))
    masks.append(np.ones(n, dtype=bool))  # else
    levels = np.full(n, len(masks) - 1, dtype=np.int8)
    for level in range(len(masks) - 2, -1, -1):
        levels[masks[level]] = level
    levels[null] = -1
    return levels, np.where(null, np.nan, scores)

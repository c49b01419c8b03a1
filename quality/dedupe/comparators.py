"""Vectorised field comparisons: from candidate pairs to comparison levels.

A comparison turns the two values of every candidate pair into a *level*
(``0`` = best, e.g. exact; ``-1`` = null on either side) and a raw score to
show in a review UI (a similarity, a distance in edits or days...). Values are
prepared once per record (transforms, parsing, phonetic codes), then scored
per pair in C with ``rapidfuzz.process.cpdist`` or with numpy, never in a
Python loop over pairs.
"""

from __future__ import annotations

__all__ = ["ComparisonVector", "prepare", "compare"]

from dataclasses import dataclass
from typing import Any

import jellyfish
import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein, Jaro, JaroWinkler, Levenshtein
from rapidfuzz.process import cpdist

from crm2erp.quality.dedupe.config import SIMILARITY_METHODS, Comparison
from crm2erp.quality.dedupe.transforms import apply, clean, normalise_phone, to_date

_SCORERS = {
    "jaro_winkler": JaroWinkler.normalized_similarity,
    "jaro": Jaro.normalized_similarity,
    "ratio": fuzz.ratio,
    "token_set": fuzz.token_set_ratio,
    "levenshtein": Levenshtein.distance,
    "damerau_levenshtein": DamerauLevenshtein.distance,
}
_PERCENT = {"ratio", "token_set"}
_PHONETIC = {"soundex": jellyfish.soundex, "metaphone": jellyfish.metaphone,
             "nysiis": jellyfish.nysiis}


@dataclass
class ComparisonVector:
    """Levels (int8, -1 = null) and raw scores (float, NaN = null) of all pairs."""

    levels: np.ndarray
    scores: np.ndarray


def _number(value: Any) -> float | None:
    text = clean(value)
    if text is None:
        return None
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def prepare(comparison: Comparison, raw: list[Any]) -> dict[str, np.ndarray]:
    """Per-record preparation of one comparison's field (done once, not per pair).

    Returns arrays indexed like the records: ``value`` (the compared text or
    number, None for null) and, for phonetic/email/phone methods, ``extra``
    (the phonetic code, the domain, the digits).
    """
    method = comparison.method
    values: list[Any] = apply(raw, comparison.transforms)
    extra: list[Any] | None = None
    if method == "phonetic":
        code = _PHONETIC[comparison.phonetic]
        extra = [code(v) or None if v else None for v in values]
    elif method == "email_domain":
        values = [v.lower() if v else None for v in values]
        extra = [v.rpartition("@")[2] or None if v and "@" in v else None for v in values]
    elif method == "phone":
        values = [normalise_phone(v, comparison.default_region) if v else None for v in values]
        extra = [v.lstrip("+") if v else None for v in values]
    elif method == "tax_id":
        values = apply(values, ["tax_id"])
    elif method == "numeric":
        values = [_number(v) for v in values]
    elif method == "date":
        values = [to_date(v) for v in values]
        ordinal = [d.toordinal() if d else np.nan for d in values]
        extra = ordinal
    out = {"value": np.array(values, dtype=object)}
    if extra is not None:
        out["extra"] = np.array(extra, dtype=object)
    return out


def _strings(column: np.ndarray, index: np.ndarray) -> list[str]:
    return ["" if v is None else v for v in column[index]]


def compare(comparison: Comparison, left: dict[str, np.ndarray], right: dict[str, np.ndarray],
            li: np.ndarray, ri: np.ndarray) -> ComparisonVector:
    """Levels and scores of pairs ``(left[li[k]], right[ri[k]])`` for one comparison."""
    method = comparison.method
    n = len(li)
    lv, rv = left["value"][li], right["value"][ri]
    null = np.fromiter((a is None or b is None for a, b in zip(lv, rv, strict=True)),
                       dtype=bool, count=n)
    exact = np.fromiter((a == b for a, b in zip(lv, rv, strict=True)), dtype=bool, count=n)
    exact &= ~null
    levels = np.full(n, -1, dtype=np.int8)
    scores = np.where(exact, 1.0, 0.0)
    # candidate levels best-first as boolean masks; the first true one wins
    masks: list[np.ndarray] = []
    if comparison.exact_level or method == "exact":
        masks.append(exact)
    thresholds = comparison.thresholds
    if method in SIMILARITY_METHODS or method in ("levenshtein", "damerau_levenshtein"):
        scorer = _SCORERS[method]
        raw = cpdist(_strings(left["value"], li), _strings(right["value"], ri), scorer=scorer,
                     dtype=np.float64)
        scores = np.asarray(raw, dtype=np.float64)
        if method in _PERCENT:
            scores = scores / 100.0
        if method in SIMILARITY_METHODS:
            masks.extend(scores >= t for t in thresholds)
        else:
            masks.extend(scores <= t for t in thresholds)
    elif method in ("numeric", "date"):
        if method == "date":
            a = np.asarray(left["extra"][li], dtype=np.float64)
            b = np.asarray(right["extra"][ri], dtype=np.float64)
        else:
            a = np.array([np.nan if v is None else v for v in lv], dtype=np.float64)
            b = np.array([np.nan if v is None else v for v in rv], dtype=np.float64)
        diff = np.abs(a - b)
        if comparison.relative:
            scale = np.maximum(np.abs(a), np.abs(b))
            diff = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
        scores = diff
        masks.extend(diff <= t for t in thresholds)
    elif method in ("phonetic", "email_domain"):
        le, re_ = left["extra"][li], right["extra"][ri]
        same = np.fromiter((a is not None and a == b for a, b in zip(le, re_, strict=True)),
                           dtype=bool, count=n)
        scores = np.where(exact, 1.0, np.where(same, 0.5, 0.0))
        masks.append(same)
    elif method == "phone":
        le, re_ = left["extra"][li], right["extra"][ri]
        for t in thresholds:
            k = int(t)
            masks.append(np.fromiter(
                (a is not None and b is not None and len(a) >= k and len(b) >= k
                 and a[-k:] == b[-k:] for a, b in zip(le, re_, strict=True)),
                dtype=bool, count=n))
    # exact / tax_id need nothing more: exact or else
    masks.append(np.ones(n, dtype=bool))
    for level in range(len(masks) - 1, -1, -1):
        levels[masks[level]] = level
    levels[null] = -1
    scores = np.where(null, np.nan, scores)
    return ComparisonVector(levels=levels, scores=scores)


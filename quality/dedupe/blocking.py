"""Candidate pairs: records that agree on at least one blocking key.

Comparing every record with every other is quadratic; blocking keeps only
pairs that share a key under one of several rules (a rule is a list of field
expressions, all of which must agree). Rules are unioned, so a typo in the
surname is still caught by the rule on date of birth. A key with a null part
produces no pairs, and a block larger than ``max_block_size`` is skipped with
a warning (a placeholder value such as ``"n/a"`` would otherwise pair every
record with every other).

Pairs are returned as two int64 index arrays; in dedupe mode ``left < right``.
"""

from __future__ import annotations

__all__ = ["rule_keys", "block_pairs", "link_pairs", "random_pairs", "pair_codes"]

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crm2erp.quality.dedupe.config import FieldExpr
from crm2erp.quality.dedupe.transforms import apply

log = logging.getLogger(__name__)


def _rule_name(rule: Sequence[FieldExpr]) -> str:
    return " & ".join(f"{e.field}|{'|'.join(e.transforms)}" if e.transforms else e.field
                      for e in rule)


def rule_keys(records: Sequence[Mapping[str, Any]], rule: Sequence[FieldExpr]) -> list[tuple | None]:
    """The blocking key of every record under one rule (None when any part is null)."""
    parts = [apply((r.get(e.field) for r in records), e.transforms) for e in rule]
    return [None if any(p is None for p in key) else key for key in zip(*parts, strict=True)]


def _groups(keys: list[tuple | None]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        if key is not None:
            groups[key].append(index)
    return groups


def pair_codes(li: np.ndarray, ri: np.ndarray, n_right: int) -> np.ndarray:
    """One int64 per pair, for set operations on pairs."""
    return li.astype(np.int64) * np.int64(n_right) + ri.astype(np.int64)


def _decode(codes: np.ndarray, n_right: int) -> tuple[np.ndarray, np.ndarray]:
    return codes // n_right, codes % n_right


def block_pairs(records: Sequence[Mapping[str, Any]], rules: Sequence[Sequence[FieldExpr]],
                max_block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Union of within-batch pairs ``(i, j)``, ``i < j``, sharing a key under any rule."""
    n = len(records)
    chunks: list[np.ndarray] = [np.empty(0, dtype=np.int64)]
    for rule in rules:
        for key, members in _groups(rule_keys(records, rule)).items():
            k = len(members)
            if k < 2:
                continue
            if k > max_block_size:
                log.warning("blocking rule %s: block %r holds %d records (> max_block_size %d); "
                            "skipped", _rule_name(rule), key, k, max_block_size)
                continue
            idx = np.asarray(members, dtype=np.int64)
            a, b = np.triu_indices(k, 1)
            chunks.append(pair_codes(idx[a], idx[b], n))
    return _decode(np.unique(np.concatenate(chunks)), max(n, 1))


def link_pairs(left: Sequence[Mapping[str, Any]], right: Sequence[Mapping[str, Any]],
               rules: Sequence[Sequence[FieldExpr]], max_block_size: int,
               ) -> tuple[np.ndarray, np.ndarray]:
    """Union of cross pairs ``(i in left, j in right)`` sharing a key under any rule."""
    n_right = len(right)
    chunks: list[np.ndarray] = [np.empty(0, dtype=np.int64)]
    for rule in rules:
        right_groups = _groups(rule_keys(right, rule))
        for key, members in _groups(rule_keys(left, rule)).items():
            others = right_groups.get(key)
            if not others:
                continue
            if max(len(members), len(others)) > max_block_size:
                log.warning("blocking rule %s: block %r holds %d x %d records; skipped",
                            _rule_name(rule), key, len(members), len(others))
                continue
            a = np.repeat(np.asarray(members, dtype=np.int64), len(others))
            b = np.tile(np.asarray(others, dtype=np.int64), len(members))
            chunks.append(pair_codes(a, b, n_right))
    return _decode(np.unique(np.concatenate(chunks)), max(n_right, 1))


def random_pairs(n_left: int, n_right: int | None, size: int, seed: int,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random pairs (almost all non-matches) for estimating u.

    ``n_right=None`` means dedupe: both sides from the same ``n_left`` records,
    never a record with itself.
    """
    rng = np.random.default_rng(seed)
    if n_right is None:
        if n_left < 2:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        size = min(size, n_left * (n_left - 1) // 2)
        a = rng.integers(0, n_left, size)
        b = rng.integers(0, n_left - 1, size)
        b = np.where(b >= a, b + 1, b)
        return np.minimum(a, b), np.maximum(a, b)
    size = min(size, n_left * n_right)
    return rng.integers(0, n_left, size), rng.integers(0, n_right, size)

"""Candidate pairs: records that agree on at least one blocking key.

Comparing every record with every other is quadratic; blocking keeps only
pairs that share a key under one of several rules (a rule is a list of field
expressions, all of which must agree). Rules are unioned, so a typo in the
surname is still caught by the rule on date of birth. A key with a null part
produces no pairs. A block larger than ``max_block_size`` (a placeholder
such as ``"n/a"``, a big city) is never dropped and never compared in full:
its records are sorted by a sort key (the matcher passes the first
comparison's value, e.g. the normalised company name) and each is paired with
the next ``window - 1`` records of the block (sorted neighbourhood), so the
pairs grow linearly with the block.

Pairs are returned as two int64 index arrays; in dedupe mode ``left < right``.
"""

from __future__ import annotations

__all__ = ["column_of", "rule_keys", "block_pairs", "block_codes", "link_pairs", "link_codes",
           "random_pairs", "pair_codes", "union_codes", "decode_codes"]

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from crm2erp.quality.dedupe.config import FieldExpr
from crm2erp.quality.dedupe.transforms import apply, get_path

log = logging.getLogger(__name__)


def _rule_name(rule: Sequence[FieldExpr]) -> str:
    return " & ".join(f"{e.field}|{'|'.join(e.transforms)}" if e.transforms else e.field
                      for e in rule)


Column = Callable[[str, list[str]], list]


def column_of(records: Sequence[Mapping[str, Any]]) -> Column:
    """A memoised ``column(field, transforms)`` over records (transformed values).

    Records held column-wise may offer ``values_of(path)``, the raw values of
    one field for all records, so no record is built as a dict to read it.
    """
    cache: dict[tuple, list] = {}
    values_of = getattr(records, "values_of", None)

    def column(name: str, transforms: list[str]) -> list:
        key = (name, tuple(transforms))
        if key not in cache:
            raw = values_of(name) if values_of else [get_path(r, name) for r in records]
            cache[key] = apply(raw, transforms)
        return cache[key]

    return column


def rule_keys(records: Sequence[Mapping[str, Any]], rule: Sequence[FieldExpr],
              column: Column | None = None) -> list[tuple | None]:
    """The blocking key of every record under one rule (None when any part is null)."""
    column = column or column_of(records)
    parts = [column(e.field, e.transforms) for e in rule]
    return [None if any(p is None for p in key) else key for key in zip(*parts, strict=True)]


def _group_ids(keys: list[tuple | None]) -> np.ndarray:
    """Dense group number per record (-1 for a null key)."""
    index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    index[None] = -1
    return np.array([index[k] for k in keys], dtype=np.int64)


def pair_codes(li: np.ndarray, ri: np.ndarray, n_right: int) -> np.ndarray:
    """One int64 per pair, for set operations on pairs."""
    return li.astype(np.int64) * np.int64(max(n_right, 1)) + ri.astype(np.int64)


def union_codes(chunks: list[np.ndarray]) -> np.ndarray:
    """Sorted distinct pair codes of all ``chunks``; empties the list as it goes.

    ``np.unique(np.concatenate(chunks))`` holds the chunks, their concatenation
    and a sorted copy at once: three times the pairs. This sorts in place and
    lets the chunks go, so a million-record run's pairs live about twice.
    """
    codes = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
    chunks.clear()
    codes.sort()
    if len(codes) < 2:
        return codes
    keep = np.empty(len(codes), dtype=bool)
    keep[0] = True
    np.not_equal(codes[1:], codes[:-1], out=keep[1:])
    return codes[keep]


def decode_codes(codes: np.ndarray, n_right: int) -> tuple[np.ndarray, np.ndarray]:
    """The (left, right) index arrays of pair codes (the inverse of :func:`pair_codes`)."""
    n_right = max(n_right, 1)
    return codes // n_right, codes % n_right


def _runs(lengths: np.ndarray) -> np.ndarray:
    """0..len-1 for every run, concatenated: [2, 3] -> [0, 1, 0, 1, 2]."""
    total = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    return np.arange(total) - np.repeat(starts, lengths)


def _sorted_groups(gid: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Record order sorted by group, start offset and size of every group."""
    order = np.argsort(gid, kind="stable")
    sizes = np.bincount(gid[gid >= 0], minlength=n_groups)
    order = order[np.count_nonzero(gid < 0):]  # nulls sort first (-1): drop them
    return order, np.cumsum(sizes) - sizes, sizes


def _ranks(sort_key: Sequence[Any] | None, n: int) -> np.ndarray:
    """Rank of every record under the sort key (None sorts first); input order without one."""
    if sort_key is None:
        return np.arange(n)
    text = np.array(["" if v is None else str(v) for v in sort_key], dtype=object)
    ranks = np.empty(n, dtype=np.int64)
    ranks[np.argsort(text, kind="stable")] = np.arange(n)
    return ranks


def _window_pairs(members: np.ndarray, gid: np.ndarray, ranks: np.ndarray,
                  window: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of records at most ``window - 1`` apart in (block, sort key) order."""
    ordered = members[np.lexsort((ranks[members], gid[members]))]
    a_parts, b_parts = [], []
    for d in range(1, window):
        a, b = ordered[:-d], ordered[d:]
        same = gid[a] == gid[b]
        a_parts.append(a[same])
        b_parts.append(b[same])
    if not a_parts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(a_parts), np.concatenate(b_parts)


def _too_big(rule: Sequence[FieldExpr], sizes: np.ndarray, limit: int, window: int,
             ) -> np.ndarray:
    big = sizes > limit
    if big.any():
        log.info("blocking rule %s: %d block(s) larger than max_block_size %d (largest %d "
                 "records) compared in sorted windows of %d", _rule_name(rule),
                 int(big.sum()), limit, int(sizes.max()), window)
    return big


def block_pairs(records: Sequence[Mapping[str, Any]], rules: Sequence[Sequence[FieldExpr]],
                max_block_size: int, column: Column | None = None, *,
                sort_key: Sequence[Any] | None = None, window: int = 20,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Union of within-batch pairs ``(i, j)``, ``i < j``, sharing a key under any rule."""
    return decode_codes(block_codes(records, rules, max_block_size, column, sort_key=sort_key,
                               window=window), len(records))


def block_codes(records: Sequence[Mapping[str, Any]], rules: Sequence[Sequence[FieldExpr]],
                max_block_size: int, column: Column | None = None, *,
                sort_key: Sequence[Any] | None = None, window: int = 20) -> np.ndarray:
    """:func:`block_pairs` as sorted :func:`pair_codes` (one int64 per pair, not two)."""
    n = len(records)
    column = column or column_of(records)
    ranks = _ranks(sort_key, n)
    chunks: list[np.ndarray] = [np.empty(0, dtype=np.int64)]
    for rule in rules:
        gid = _group_ids(rule_keys(records, rule, column))
        n_groups = int(gid.max()) + 1 if n else 0
        order, starts, sizes = _sorted_groups(gid, n_groups)
        big = _too_big(rule, sizes, max_block_size, window)
        if big.any():
            a, b = _window_pairs(np.flatnonzero((gid >= 0) & big[gid]), gid, ranks, window)
            chunks.append(pair_codes(np.minimum(a, b), np.maximum(a, b), n))
        sizes = np.where(big, 0, sizes)
        # each record pairs with the records after it in its (sorted) group
        g = gid[order]
        later = np.maximum(starts[g] + sizes[g] - np.arange(len(order)) - 1, 0)
        later[sizes[g] == 0] = 0
        a = np.repeat(order, later)
        b = order[np.repeat(np.arange(len(order)), later) + 1 + _runs(later)]
        chunks.append(pair_codes(np.minimum(a, b), np.maximum(a, b), n))
        del a, b, later, g
        chunks = [union_codes(chunks)]   # dedupe as we go: rules overlap
    return union_codes(chunks)


def link_pairs(left: Sequence[Mapping[str, Any]], right: Sequence[Mapping[str, Any]],
               rules: Sequence[Sequence[FieldExpr]], max_block_size: int,
               column: Column | None = None, *, sort_key: Sequence[Any] | None = None,
               window: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Union of cross pairs ``(i in left, j in right)`` sharing a key under any rule.

    ``column`` and ``sort_key``, when given, serve the values of ``left + right``.
    """
    return decode_codes(link_codes(left, right, rules, max_block_size, column, sort_key=sort_key,
                              window=window), len(right))


def link_codes(left: Sequence[Mapping[str, Any]], right: Sequence[Mapping[str, Any]],
               rules: Sequence[Sequence[FieldExpr]], max_block_size: int,
               column: Column | None = None, *, sort_key: Sequence[Any] | None = None,
               window: int = 20) -> np.ndarray:
    """:func:`link_pairs` as sorted :func:`pair_codes`."""
    n_left, n_right = len(left), len(right)
    both = list(left) + list(right)
    column = column or column_of(both)
    ranks = _ranks(sort_key, len(both))
    chunks: list[np.ndarray] = [np.empty(0, dtype=np.int64)]
    for rule in rules:
        gid = _group_ids(rule_keys(both, rule, column))
        g_left, g_right = gid[:n_left], gid[n_left:]
        n_groups = int(gid.max()) + 1 if len(gid) else 0
        order, starts, sizes = _sorted_groups(g_right, n_groups)
        left_sizes = np.bincount(g_left[g_left >= 0], minlength=n_groups)
        big = _too_big(rule, np.maximum(sizes, left_sizes), max_block_size, window)
        if big.any():
            a, b = _window_pairs(np.flatnonzero((gid >= 0) & big[gid]), gid, ranks, window)
            lo, hi = np.minimum(a, b), np.maximum(a, b)
            cross = (lo < n_left) & (hi >= n_left)
            chunks.append(pair_codes(lo[cross], hi[cross] - n_left, n_right))
        sizes = np.where(big, 0, sizes)
        members = np.flatnonzero(g_left >= 0)
        g = g_left[members]
        count = sizes[g]
        a = np.repeat(members, count)
        b = order[np.repeat(starts[g], count) + _runs(count)]
        chunks.append(pair_codes(a, b, n_right))
        del a, b, count
        chunks = [union_codes(chunks)]
    return union_codes(chunks)


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

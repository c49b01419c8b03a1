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

Fields are read once as :class:`~crm2erp.quality.dedupe.columns.Columns`:
integer codes into distinct values, so a key is a number, not a string per
record. Pairs are made :func:`candidate_chunks` at a time, a range of
left records per chunk, so a million-record run never holds more than one
chunk's rule pairs on top of the result. In dedupe mode ``left < right``.
"""

from __future__ import annotations

__all__ = ["Blocking", "rule_keys", "block_pairs", "link_pairs", "random_pairs", "pair_codes",
           "union_codes", "decode_codes", "ranks_of"]

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from crm2erp.quality.dedupe.columns import Columns, Factorised, factorise
from crm2erp.quality.dedupe.config import FieldExpr

log = logging.getLogger(__name__)

RECORDS_PER_CHUNK = 32_768   # left records whose pairs are made (and unioned) at once


def _rule_name(rule: Sequence[FieldExpr]) -> str:
    return " & ".join(f"{e.field}|{'|'.join(e.transforms)}" if e.transforms else e.field
                      for e in rule)


def rule_keys(records: Sequence[Mapping[str, Any]], rule: Sequence[FieldExpr],
              ) -> list[tuple | None]:
    """The blocking key of every record under one rule (None when any part is null)."""
    columns = Columns(records)
    parts = [columns.values(e.field, e.transforms) for e in rule]
    return [None if any(p is None for p in key) else key for key in zip(*parts, strict=True)]


def _group_ids(columns: Columns, rule: Sequence[FieldExpr]) -> tuple[np.ndarray, int]:
    """Dense group number per record (-1 when a part of its key is null), number of groups."""
    gid: np.ndarray | None = None
    for expr in rule:
        codes = columns.codes(expr.field, expr.transforms).astype(np.int64)
        if gid is None:
            gid = codes
            continue
        combined = np.where((gid < 0) | (codes < 0), -1, gid * (int(codes.max()) + 1) + codes)
        gid = _dense(combined)
    assert gid is not None, "a blocking rule has at least one field"
    return gid.astype(np.int32), int(gid.max()) + 1 if len(gid) else 0


def _dense(keys: np.ndarray) -> np.ndarray:
    out = np.full(len(keys), -1, dtype=np.int64)
    valid = keys >= 0
    out[valid] = np.unique(keys[valid], return_inverse=True)[1]
    return out


def pair_codes(li: np.ndarray, ri: np.ndarray, n_right: int) -> np.ndarray:
    """One int64 per pair, for set operations on pairs."""
    return li.astype(np.int64) * np.int64(max(n_right, 1)) + ri.astype(np.int64)


def union_codes(chunks: list[np.ndarray]) -> np.ndarray:
    """Sorted distinct pair codes of all ``chunks``; empties the list as it goes."""
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


def ranks_of(key: Factorised | None, n: int) -> np.ndarray:
    """Rank (int32) of every record under a sort key (nulls first, ties in input order)."""
    if key is None:
        return np.arange(n, dtype=np.int32)
    unique_rank = np.empty(len(key.uniques) + 1, dtype=np.int32)   # the last: null
    unique_rank[np.argsort(key.uniques, kind="stable")] = np.arange(len(key.uniques))
    unique_rank[-1] = -1
    by_value = unique_rank[key.codes]
    ranks = np.empty(n, dtype=np.int32)
    ranks[np.argsort(by_value, kind="stable")] = np.arange(n, dtype=np.int32)
    return ranks


class _Rule:
    """One blocking rule's groups, indexed so that any record's partners are a slice."""

    def __init__(self, rule: Sequence[FieldExpr], columns: Columns, n_left: int, link: bool,
                 ranks: np.ndarray, max_block_size: int, window: int):
        self.n_left, self.link, self.window = n_left, link, window
        gid, n_groups = _group_ids(columns, rule)
        self.gid = gid
        # regular blocks: members (right side in link mode) sorted by group, then index
        side = gid[n_left:] if link else gid
        order = np.argsort(side, kind="stable")
        order = order[np.count_nonzero(side < 0):].astype(np.int32)
        sizes = np.bincount(side[side >= 0], minlength=n_groups)
        self.order, self.starts = order, (np.cumsum(sizes) - sizes).astype(np.int32)
        self.pos = np.full(len(side), -1, dtype=np.int32)
        self.pos[order] = np.arange(len(order), dtype=np.int32)
        left_sizes = np.bincount(gid[:n_left][gid[:n_left] >= 0], minlength=n_groups)
        self.big = (np.maximum(sizes, left_sizes) if link else sizes) > max_block_size
        if self.big.any():
            log.info("blocking rule %s: %d block(s) larger than max_block_size %d (largest %d "
                     "records) compared in sorted windows of %d", _rule_name(rule),
                     int(self.big.sum()), max_block_size,
                     int(np.maximum(sizes, left_sizes).max()), window)
        # one more entry for the null key (-1): no block
        self.big = np.append(self.big, False)
        self.sizes = np.append(np.where(self.big[:-1], 0, sizes), 0)
        regular = (self.sizes[:-1] * np.where(self.big[:-1], 0, left_sizes) if link
                   else self.sizes * (self.sizes - 1) // 2)
        # at most: every pair of a regular block, 2 (window - 1) neighbours per windowed record
        self.max_pairs = int(regular.sum()) + 2 * (window - 1) * int(self.big[gid].sum())
        # oversized blocks: members (both sides) in (group, sort key) order
        members = np.flatnonzero(self.big[gid])
        self.windowed = members[np.lexsort((ranks[members], gid[members]))].astype(np.int32)
        self.wpos = np.full(len(gid), -1, dtype=np.int32)
        self.wpos[self.windowed] = np.arange(len(self.windowed), dtype=np.int32)

    def pairs(self, lo: int, hi: int) -> np.ndarray:
        """Pair codes of the left records ``lo..hi-1`` under this rule (unsorted)."""
        idx = np.arange(lo, hi)
        g = self.gid[idx]
        n_right = len(self.pos) if self.link else len(self.gid)
        out = []
        member = idx[self.sizes[g] > 0]
        if len(member):
            g = self.gid[member]
            if self.link:   # every right member of the group
                count = self.sizes[g]
                a = np.repeat(member, count)
                b = self.order[np.repeat(self.starts[g], count) + _runs(count)]
            else:           # the members after it (larger indices) in its group
                p = self.pos[member]
                count = self.starts[g] + self.sizes[g] - p - 1
                a = np.repeat(member, count)
                b = self.order[np.repeat(p + 1, count) + _runs(count)]
            out.append(pair_codes(a, b, n_right))
        wp = self.wpos[lo:hi]
        inside = np.flatnonzero(wp >= 0)
        if len(inside):
            i, wp = idx[inside], wp[inside]
            for d in range(1 - self.window, self.window):
                if d == 0:
                    continue
                q = wp + d
                ok = (q >= 0) & (q < len(self.windowed))
                j = self.windowed[q[ok]]
                a = i[ok]
                same = self.gid[j] == self.gid[a]
                a, j = a[same], j[same]
                if self.link:   # cross pairs only
                    keep = j >= self.n_left
                    out.append(pair_codes(a[keep], j[keep] - self.n_left, n_right))
                else:           # each pair once, from its smaller index
                    keep = j > a
                    out.append(pair_codes(a[keep], j[keep], n_right))
        return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


class Blocking:
    """Candidate pairs of records under blocking rules, made a chunk of left records at a time.

    ``n_left`` records come first in ``columns``; in link mode (``link``) the
    existing records follow them and pairs are (left, right) with right
    indices counted from 0.
    """

    def __init__(self, columns: Columns, n_left: int, n_right: int, link: bool,
                 max_block_size: int, window: int, sort_key: Factorised | None = None):
        self.columns, self.n_left, self.n_right, self.link = columns, n_left, n_right, link
        self.max_block_size, self.window = max_block_size, window
        self.ranks = ranks_of(sort_key, n_left + (n_right if link else 0))

    def _indexed(self, rules: Sequence[Sequence[FieldExpr]]) -> list[_Rule]:
        return [_Rule(rule, self.columns, self.n_left, self.link, self.ranks,
                      self.max_block_size, self.window) for rule in rules]

    def chunks(self, rules: Sequence[Sequence[FieldExpr]],
               extra: Sequence[np.ndarray] = ()) -> Iterator[np.ndarray]:
        """Sorted distinct pair codes, one range of left records after another.

        ``extra`` are sorted pair codes to union in (deterministic rules' pairs).
        """
        return self._chunks(self._indexed(rules), extra)

    def _chunks(self, indexed: list[_Rule], extra: Sequence[np.ndarray],
                ) -> Iterator[np.ndarray]:
        n = max(self.n_right, 1)
        for lo in range(0, self.n_left, RECORDS_PER_CHUNK):
            hi = min(lo + RECORDS_PER_CHUNK, self.n_left)
            parts = [rule.pairs(lo, hi) for rule in indexed]
            for codes in extra:
                parts.append(codes[np.searchsorted(codes, lo * n):np.searchsorted(codes, hi * n)])
            yield union_codes(parts)

    def codes(self, rules: Sequence[Sequence[FieldExpr]]) -> np.ndarray:
        """All pair codes under ``rules`` at once, sorted."""
        return union_codes(list(self.chunks(rules)))

    def pairs(self, rules: Sequence[Sequence[FieldExpr]],
              extra: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, np.ndarray]:
        """(left, right) index arrays (int32 when the records allow) of the union."""
        dtype = np.int32 if self.n_left + self.n_right < 2**31 else np.int64
        indexed = self._indexed(rules)
        # filled chunk by chunk up to an upper bound: the pages past the end are never
        # touched, so never resident (no list of chunks and its joined copy at once)
        bound = sum(r.max_pairs for r in indexed) + sum(len(codes) for codes in extra)
        li, ri = np.empty(bound, dtype=dtype), np.empty(bound, dtype=dtype)
        end = 0
        for codes in self._chunks(indexed, extra):
            li[end:end + len(codes)], ri[end:end + len(codes)] = decode_codes(codes,
                                                                              self.n_right)
            end += len(codes)
        return li[:end], ri[:end]


def block_pairs(records: Sequence[Mapping[str, Any]], rules: Sequence[Sequence[FieldExpr]],
                max_block_size: int, *, sort_key: Sequence[Any] | None = None, window: int = 20,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Union of within-batch pairs ``(i, j)``, ``i < j``, sharing a key under any rule."""
    return Blocking(Columns(records), len(records), len(records), False, max_block_size,
                    window, _sort_key(sort_key)).pairs(rules)


def _sort_key(values: Sequence[Any] | None) -> Factorised | None:
    return None if values is None else factorise([None if v is None else str(v) for v in values])


def link_pairs(left: Sequence[Mapping[str, Any]], right: Sequence[Mapping[str, Any]],
               rules: Sequence[Sequence[FieldExpr]], max_block_size: int, *,
               sort_key: Sequence[Any] | None = None, window: int = 20,
               ) -> tuple[np.ndarray, np.ndarray]:
    """Union of cross pairs ``(i in left, j in right)`` sharing a key under any rule.

    ``sort_key``, when given, holds the values of ``left + right``.
    """
    return Blocking(Columns(left, right), len(left), len(right), True, max_block_size,
                    window, _sort_key(sort_key)).pairs(rules)


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

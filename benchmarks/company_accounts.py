"""The ``account`` preset on generated company accounts, beside Splink (by hand; not a test).

The accounts come from :mod:`crm2erp.testing.company_accounts` (legal-form
spellings, transliteration, typos, phone formats, moved addresses; known
truth). For every size each engine runs in its own subprocess (so peak RSS is
its own): crm2erp's ``account`` preset, and Splink (DuckDB backend, when
``splink`` is installed: ``pip install -e '.[bench]'``) with the same blocking
rules and comparable comparisons on the same normalised fields, trained
unsupervised on the data it scores (u from random pairs, m by EM, as Splink's
tutorials do). Prints precision, recall, F1, wall time (matching only, not the
generation), candidate pairs and peak RSS.

Usage, from the repository root::

    python benchmarks/company_accounts.py [--sizes 10000 100000] [--seed 2]
        [--engines crm2erp splink]
    python benchmarks/company_accounts.py --fit-seed 1   # the preset's m, u, lambda (fit seed)

The preset was fitted on seed 1 and is never reported on it (docs/dedupe.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from crm2erp.testing.company_accounts import generate, generate_columns, predicted_pairs

THRESHOLD = 0.99   # the preset's upper threshold; Splink clusters at the same probability


def _packed(pairs: set[frozenset]) -> np.ndarray:
    """Pairs of ids as one string array (``a|b``): a million records' truth in a few MB
    instead of ~75 MB of frozensets, so it does not weigh on the measured peak RSS."""
    return np.array(["|".join(sorted(map(str, p))) for p in pairs],
                    dtype=np.dtypes.StringDType())


def _scores(predicted: set[frozenset], truth: np.ndarray) -> dict:
    tp = len(set(_packed(predicted).tolist()) & set(truth.tolist()))
    p, r = tp / max(len(predicted), 1), tp / max(len(truth), 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-9)}


def run_crm2erp(rows: Sequence[dict]) -> tuple[set[frozenset], Callable[[], int]]:
    from crm2erp.quality.dedupe import Matcher, preset

    # scored in chunks; only the pairs above the review threshold are kept
    result = Matcher(preset("account"), keep_distinct=False).dedupe(rows)
    return predicted_pairs(result), lambda: result.candidate_pairs


def _splink_columns(rows: list[dict]) -> dict[str, list]:
    """The fields both engines compare, normalised by crm2erp's own transforms."""
    from crm2erp.quality.dedupe.transforms import apply, get_path, normalise_phone, region_code

    def col(path: str, transforms: list[str]) -> list:
        return apply([get_path(r, path) for r in rows], transforms)

    phones = [normalise_phone(p, region_code(get_path(r, "billing_address.country")))
              if p else None for r, p in zip(rows, col("phone", []), strict=True)]
    return {"unique_id": [r["id"] for r in rows], "name": col("name", ["company"]),
            "tax_id": col("tax_id", ["tax_id"]), "email": col("email", ["email"]),
            "email_domain": col("email", ["email_domain"]), "phone": phones,
            "phone8": col("phone", ["digits", "last:8"]),
            "city": col("billing_address.city", ["name"]),
            "street": col("billing_address.street", ["name"]),
            "postal_code": col("billing_address.postal_code", ["alnum"])}


def run_splink(rows: list[dict]) -> tuple[set[frozenset], Callable[[], int]]:
    import tempfile

    import duckdb
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    # the same memory budget as the target for crm2erp; DuckDB spills the rest to disk
    connection = duckdb.connect(config={"memory_limit": "1GB",
                                        "temp_directory": tempfile.mkdtemp()})
    db_api = DuckDBAPI(connection=connection)
    table = db_api.register(_splink_columns(rows), table_name="accounts")
    # the preset's blocking rules: name prefix, e-mail domain, phone suffix, city + initial
    # (Splink compares every pair of a block: it has no max_block_size / sorted windows)
    rules = [block_on("substr(name, 1, 4)"), block_on("email_domain"), block_on("phone8"),
             block_on("city", "substr(name, 1, 1)")]
    name_jw = cl.JaroWinklerAtThresholds("name", [0.94, 0.85])
    city_jw = cl.JaroWinklerAtThresholds("city", [0.9])
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=rules,
        comparisons=[
            name_jw.configure(term_frequency_adjustments=True),
            cl.ExactMatch("tax_id"),
            cl.ExactMatch("email_domain"),
            cl.ExactMatch("phone"),
            city_jw.configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("street", [0.9])],
        retain_intermediate_calculation_columns=False)
    linker = Linker(table, settings, log_level="WARNING")
    linker.training.estimate_probability_two_random_records_match(
        [block_on("tax_id"), block_on("phone")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    # the preset's training rules: e-mail domain, then phone
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("email_domain"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("phone"))
    pairs = linker.inference.predict(threshold_match_probability=0.01)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, THRESHOLD)
    members: dict[str, list[str]] = {}
    for uid, cid in db_api._execute_sql_against_backend(
            f"select unique_id, cluster_id from {clusters.physical_name}").fetchall():
        members.setdefault(cid, []).append(uid)
    predicted = {frozenset((a, b)) for ids in members.values() for i, a in enumerate(ids)
                 for b in ids[i + 1:]}

    def blocked_pairs() -> int:
        counts = count_comparisons_from_blocking_rules(
            table, blocking_rules=rules, link_type="dedupe_only", record_sample_proportion=1.0)
        return int(counts[-1]["cumulative_comparison_count"])

    return predicted, blocked_pairs


ENGINES = {"crm2erp": run_crm2erp, "splink": run_splink}


def measure(engine: str, size: int, seed: int) -> dict:
    """One engine on one generated set, in this process (the parent runs it in a child)."""
    # crm2erp reads the records column-wise (a dict per record is 1 GB at 1M); Splink a dict
    rows, pairs = generate_columns(size, seed) if engine == "crm2erp" else generate(size, seed)
    truth = _packed(pairs)
    del pairs
    start, cpu = time.perf_counter(), time.process_time()
    predicted, count_pairs = ENGINES[engine](rows)
    wall = time.perf_counter() - start   # the candidate pairs are counted after the clock
    cpu = time.process_time() - cpu      # all threads (DuckDB's too): steadier on a busy machine
    records, pairs = len(rows), count_pairs()
    # the peak of generating and matching; the scoring below is the benchmark's own
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del rows, count_pairs
    return {"engine": engine, "records": records, "true_pairs": len(truth), "pairs": pairs,
            **_scores(predicted, truth), "wall": wall, "cpu": cpu, "rss_mb": rss_mb}


def fit(seed: int, size: int = 10_000) -> None:
    """Print the preset's comparisons with m, u and lambda fitted on ``seed`` (no labels)."""
    from crm2erp.quality.dedupe import Matcher, preset
    from crm2erp.quality.dedupe.model import unfitted

    matcher = Matcher(unfitted(preset("account")))
    matcher.fit(generate(size, seed)[0])
    cfg = matcher.fitted_config()
    for c in cfg.comparisons:
        print(f"{c.label}: m {c.m}, u {c.u}")
    print(f"lambda: {cfg.lambda_}")
    for warning in matcher.fit_warnings:
        print(f"warning: {warning}")


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=2, help="report seed (the preset: seed 1)")
    parser.add_argument("--engines", nargs="+", choices=sorted(ENGINES),
                        default=["crm2erp", "splink"])
    parser.add_argument("--fit-seed", type=int, help="print the preset fitted on this seed")
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fit_seed is not None:
        fit(args.fit_seed)
        return
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]), args.seed)))
        return
    engines = [e for e in args.engines if e != "splink" or importlib.util.find_spec("splink")]
    if len(engines) < len(args.engines):
        print("splink is not installed (pip install -e '.[bench]'): its rows are left out")
    table = Table(title=f"generated company accounts, seed {args.seed} (preset fitted on "
                        "seed 1)")
    for col in ("records", "engine", "true pairs", "candidate pairs", "precision", "recall",
                "F1", "wall s", "CPU s", "peak RSS MB"):
        table.add_column(col, justify="right")
    for size in args.sizes:
        for engine in engines:
            done = subprocess.run([sys.executable, __file__, "--seed", str(args.seed),
                                   "--child", engine, str(size)],
                                  capture_output=True, text=True, check=False)
            if done.returncode:
                print(f"{engine} at {size:,} records failed:\n{done.stderr}", file=sys.stderr)
                table.add_row(f"{size:,}", engine, *["failed"] + [""] * 7)
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(r), flush=True)   # each result as it comes (long runs)
            table.add_row(f"{r['records']:,}", engine, f"{r['true_pairs']:,}",
                          f"{r['pairs']:,}", f"{r['precision']:.4f}", f"{r['recall']:.4f}",
                          f"{r['f1']:.4f}", f"{r['wall']:.1f}", f"{r['cpu']:.1f}",
                          f"{r['rss_mb']:.0f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()

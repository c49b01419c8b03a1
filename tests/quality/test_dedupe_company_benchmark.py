"""The company-account generator's phones are real numbers, and the documented benchmark runs."""

import re
import subprocess
import sys
from pathlib import Path

import phonenumbers

from crm2erp.testing.company_accounts import generate

ROOT = Path(__file__).resolve().parents[2]


def test_every_generated_phone_is_valid_in_its_country_and_duplicates_share_the_number():
    rows, truth = generate(3000, seed=3)
    by_id = {r["id"]: r for r in rows}

    def e164(row):
        number = phonenumbers.parse(row["phone"], row["billing_address"]["country"])
        assert phonenumbers.is_valid_number(number), (row["phone"], row["billing_address"])
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    numbers = {r["id"]: e164(r) for r in rows if r["phone"]}
    assert len(numbers) > 0.85 * len(rows)
    # written in several ways, e.g. '+49 (0)30 ...', '030/...', '0049 30 ...'
    assert len({re.sub(r"\d", "9", r["phone"]) for r in rows if r["phone"]}) > 20
    entity = {rid: rid[1:] for rid in numbers}
    assert len(set(numbers.values())) == len({entity[rid] for rid in numbers})  # one a company
    shared = [p for p in truth if all(by_id[i]["phone"] for i in p)]
    assert shared and all(len({numbers[i] for i in p}) == 1 for p in shared)


def test_the_documented_benchmark_runs_at_a_tiny_size():
    doc = (ROOT / "docs" / "dedupe.md").read_text()
    command = "python benchmarks/company_accounts.py --sizes 10000 100000 --seed 2"
    assert command in doc
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "company_accounts.py"),
                           "--sizes", "600", "--seed", "2", "--engines", "crm2erp"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "│" in line and "crm2erp" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    records, engine, true_pairs, pairs, precision, recall, f1, wall, cpu, rss = cells
    assert engine == "crm2erp" and int(records.replace(",", "")) > 500
    assert int(pairs.replace(",", "")) > int(true_pairs.replace(",", "")) > 100
    assert float(f1) >= 0.95 and float(rss) > 0


def test_the_preset_is_what_fitting_on_seed_1_prints():
    from crm2erp.quality.dedupe import preset

    assert "python benchmarks/company_accounts.py --fit-seed 1" in (
        ROOT / "docs" / "dedupe.md").read_text()
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "company_accounts.py"),
                           "--fit-seed", "1"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    printed = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    config = preset("account")
    for c in config.comparisons:
        assert printed[c.label] == f"m {c.m}, u {c.u}"
    assert float(printed["lambda"]) == config.lambda_

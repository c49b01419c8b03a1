"""The quality gate on a real SQLite CRM and ERP: threshold, quarantine, warnings."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from gx_project import clean_accounts, erp_rows, make_project  # noqa: E402

from crm2erp.engine import Engine  # noqa: E402
from crm2erp.engine.resolver import canonical_id_for  # noqa: E402
from crm2erp.errors import ConfigError  # noqa: E402
from crm2erp.mapping import load_project  # noqa: E402
from crm2erp.quality.gx import QualityGateError  # noqa: E402
from crm2erp.store import StateStore  # noqa: E402

RULE = "tax id present"
IDS = [row["id"] for row in clean_accounts(100)]
PROSPECT, BAD_ZIP = IDS[50], IDS[60]


def _cid(crm_id: str) -> str:
    return canonical_id_for("Account", "crm", crm_id)


def _accounts(missing_tax_ids: int, bad_zip: bool = False) -> list[dict]:
    rows = clean_accounts(100)
    for row in rows[:missing_tax_ids]:
        row.update(vat_id=None, account_type="Customer")
    prospect = rows[50]
    prospect.update(vat_id=None, account_type="Prospect")  # the rule is for customers only
    if bad_zip:
        rows[60]["zip"] = "123"
    return rows


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))
    monkeypatch.delenv("CRM2ERP_REPORTS_DIR", raising=False)

    def build(missing: int, bad_zip: bool = False, threshold: str = "2%"):
        folder = make_project(tmp_path, _accounts(missing, bad_zip), threshold=threshold)
        store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        return load_project(folder), store

    return build


def test_three_percent_missing_stops_the_run_before_the_load(project, tmp_path):
    started = time.monotonic()
    loaded, store = project(missing=3)
    with Engine(loaded, store) as engine, pytest.raises(QualityGateError) as raised:
        engine.run("demo_accounts")
    assert raised.value.share == pytest.approx(0.03)
    assert RULE in str(raised.value) and "2.0%" in str(raised.value)
    assert erp_rows(tmp_path) == []                       # nothing reached the target
    run = store.list_runs("demo_accounts")[0]
    assert run.status == "stopped" and "threshold" in run.message
    results = {r.rule: r for r in store.quality_results(run.id)}
    assert results[RULE].failed == 3 and results[RULE].success is False
    assert results[RULE].evaluated == 3 + sum(
        1 for r in _accounts(3)[3:] if r["account_type"].strip().lower() in ("customer", "kunde"))
    assert sorted(s["key"] for s in results[RULE].sample) == IDS[:3]
    assert (tmp_path / "reports" / f"run-{run.id}.html").is_file()   # the failed run's report
    store.close()
    print(f"gate test took {time.monotonic() - started:.1f}s")


def test_one_percent_loads_the_good_rows_and_quarantines_the_bad(project, tmp_path):
    loaded, store = project(missing=1, bad_zip=True)
    with Engine(loaded, store) as engine:
        result = engine.run("demo_accounts")
    assert result.status == "partial"
    assert result.counts["created"] == 99 and result.counts["failed"] == 1
    refs = {row["crm_ref"] for row in erp_rows(tmp_path)}
    assert len(refs) == 99 and _cid(IDS[0]) not in refs
    assert _cid(PROSPECT) in refs    # the prospect without a tax id: the rule does not apply
    letters = store.dead_letters(flow="demo_accounts")
    assert [(d.source_key, d.stage) for d in letters] == [(IDS[0], "quality")]
    assert RULE in letters[0].error and "expect_column_values_to_not_be_null" in letters[0].error
    assert "tax_id" in letters[0].error and "None" in letters[0].error
    results = {r.rule: r for r in store.quality_results(result.run_id)}
    zip_rule = results["regex(billing_address.postal_code)"]
    assert zip_rule.severity == "warning" and zip_rule.failed == 1
    assert zip_rule.sample == [{"key": BAD_ZIP, "value": "123"}]    # loaded, only recorded
    assert _cid(BAD_ZIP) in refs
    report = json.loads((tmp_path / "reports" / f"run-{result.run_id}.json").read_text())
    assert report["quality"]["failed_by_severity"] == {"critical": 1, "warning": 1, "info": 0}
    assert report["dead_letters"][0]["stage"] == "quality"
    assert report["dead_letters"][0]["payload"]["email"].startswith(
        report["dead_letters"][0]["payload"]["email"][0] + "***@")   # PII masked
    assert not (tmp_path / "reports" / "gx-docs").exists()   # no unescaped GX Data Docs
    store.close()


def test_a_higher_threshold_lets_the_batch_through(project, tmp_path):
    loaded, store = project(missing=3, threshold="5%")
    with Engine(loaded, store) as engine:
        result = engine.run("demo_accounts")
    assert result.counts["created"] == 97 and result.counts["failed"] == 3
    assert store.count_dead_letters("demo_accounts") == 3
    store.close()


def test_unknown_expectation_is_a_config_error_naming_the_rule(tmp_path):
    from crm2erp.mapping.models import FlowSpec
    from crm2erp.quality.gx.suite import build_suite

    flow = FlowSpec.model_validate({
        "flow": "f", "entity": "Account",
        "source": {"connection": "a", "stream": "s", "mapping": "m"},
        "target": {"connection": "b", "stream": "t", "mapping": "m"},
        "quality": [{"expect": "expect_column_values_to_be_nul", "column": "name"}]})
    with pytest.raises(ConfigError, match="expect_column_values_to_be_null"):
        build_suite(flow)


def test_exported_suite_has_schema_and_flow_rules(project, tmp_path):
    from crm2erp.quality.gx.suite import suite_json

    loaded, store = project(missing=0)
    store.close()
    suite = suite_json(loaded.flows["demo_accounts"])
    by_rule = {e["meta"]["rule"]: e for e in suite["expectations"]}
    assert by_rule[RULE]["type"] == "expect_column_values_to_not_be_null"
    assert "row_condition" in by_rule[RULE]["kwargs"]
    assert by_rule["schema: type in AccountType"]["kwargs"]["value_set"] == [
        "customer", "prospect", "partner"]
    assert by_rule["regex(billing_address.postal_code)"]["meta"]["severity"] == "warning"


def test_quality_cli_run_and_export(project, tmp_path, capsys):
    from crm2erp.cli.app import main

    loaded, store = project(missing=2)
    store.close()
    state = f"sqlite:///{tmp_path / 'state.db'}"
    args = ["--project", str(tmp_path / "project"), "--state", state]
    assert main([*args, "quality", "run", "demo_accounts"]) == 1
    out = capsys.readouterr().out
    assert RULE in out and "2 critical failure(s)" in out
    assert main([*args, "quality", "export", "demo_accounts", "--out",
                 str(tmp_path / "suite.json")]) == 0
    suite = json.loads((tmp_path / "suite.json").read_text())
    assert suite["name"] == "crm2erp.demo_accounts"
    assert RULE in {e["meta"]["rule"] for e in suite["expectations"]}

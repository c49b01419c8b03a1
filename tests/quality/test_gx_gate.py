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


def test_exported_suite_has_the_flow_rules_and_the_schema_ones_on_request(project, tmp_path):
    from crm2erp.quality.gx.suite import suite_json

    loaded, store = project(missing=0)
    store.close()
    flow = loaded.flows["demo_accounts"]
    suite = suite_json(flow)
    by_rule = {e["meta"]["rule"]: e for e in suite["expectations"]}
    assert by_rule[RULE]["type"] == "expect_column_values_to_not_be_null"
    assert "row_condition" in by_rule[RULE]["kwargs"]
    assert by_rule["regex(billing_address.postal_code)"]["meta"]["severity"] == "warning"
    # pydantic already guarantees the schema's expectations: not run unless asked for
    assert not [rule for rule in by_rule if rule.startswith("schema: ")]
    documented = flow.model_copy(update={
        "quality": flow.quality.model_copy(update={"schema_": True})})
    by_rule = {e["meta"]["rule"]: e for e in suite_json(documented)["expectations"]}
    assert by_rule["schema: type in AccountType"]["kwargs"]["value_set"] == [
        "customer", "prospect", "partner"]


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


CUSTOM_CHECKS = '''\
import great_expectations as gx


class ExpectColumnValuesToBeFiveDigitZip(gx.expectations.ExpectColumnValuesToMatchRegex):
    """A German/US-style postal code: five digits."""

    regex: str = r"^[0-9]{5}$"
'''


def test_a_custom_expectation_from_the_users_package_quarantines_its_rows(
        project, tmp_path, monkeypatch):
    package = tmp_path / "site"
    package.mkdir()
    (package / "acme_checks.py").write_text(CUSTOM_CHECKS)
    monkeypatch.syspath_prepend(str(package))
    loaded, store = project(missing=0, bad_zip=True)
    store.close()
    flow_file = loaded.flows["demo_accounts"].source_file
    text = flow_file.read_text()
    rules = text[text.index("  rules:"):]
    flow_file.write_text(text.replace(rules, (
        "  rules:\n"
        "    - expect: acme_checks:ExpectColumnValuesToBeFiveDigitZip\n"
        "      column: billing_address.postal_code\n"
        "      name: five-digit zip\n")))
    with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as store, \
            Engine(load_project(flow_file.parent), store) as engine:
        result = engine.run("demo_accounts")
        letters = store.dead_letters(flow="demo_accounts", status="open", limit=10)
    assert [(d.stage, d.source_key) for d in letters] == [("quality", BAD_ZIP)]
    assert "five-digit zip" in letters[0].error
    assert result.counts["created"] == 99
    with pytest.raises(ConfigError, match="module 'acme_missing' cannot be imported"):
        from crm2erp.quality.gx.suite import expectation_class

        expectation_class("acme_missing:ExpectSomething")


def test_a_gx_folder_gives_the_project_saved_suites_checkpoints_and_data_docs(
        project, tmp_path):
    loaded, store = project(missing=1, bad_zip=True, threshold="50%")
    store.close()
    folder = loaded.flows["demo_accounts"].source_file.parent
    (folder / "gx").mkdir()
    name = "crm2erp.demo_accounts"
    objects = []
    for _ in (1, 2):   # the second run reuses what the first saved
        with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as store, \
                Engine(load_project(folder), store) as engine:
            engine.run("demo_accounts", mode="full_refresh")
            letters = store.dead_letters(flow="demo_accounts", status="open", limit=10)
        # the critical rule quarantines the customer without a tax id (the zip rule warns)
        assert {(d.stage, d.source_key) for d in letters} == {("quality", IDS[0])}
        saved = {p.relative_to(folder / "gx").as_posix() for p in (folder / "gx").rglob("*")
                 if p.is_file()}
        assert "expectations/crm2erp/demo_accounts.json" in saved   # GX nests dotted names
        assert any(s.startswith("validation_definitions/") and name in s for s in saved)
        assert any(s.startswith("checkpoints/") and name in s for s in saved)
        objects.append({s for s in saved if s.split("/")[0] in (
            "expectations", "validation_definitions", "checkpoints")})
    assert objects[0] == objects[1]      # the same objects, reused, none added
    suite = json.loads((folder / "gx" / "expectations" / "crm2erp" / "demo_accounts.json")
                       .read_text())
    assert {e["meta"]["rule"] for e in suite["expectations"]} == {
        RULE, "regex(billing_address.postal_code)"}
    docs = folder / "gx" / "uncommitted" / "data_docs" / "local_site"
    pages = [p for p in docs.rglob("*.html") if "validations" in p.parts]
    assert (docs / "index.html").is_file() and pages
    assert any(BAD_ZIP in p.read_text() or "postal_code" in p.read_text() for p in pages)


def test_a_rule_gx_cannot_evaluate_is_stored_with_gx_message(project, tmp_path):
    """A ``between`` rule with a number bound on a text field: GX raises inside its
    metric (GX 1.x nests that per metric in ``exception_info``); the rule is stored as
    failed with GX's message (the gate read only the flat form and lost it)."""
    loaded, store = project(missing=0)
    store.close()
    flow_file = loaded.flows["demo_accounts"].source_file
    flow_file.write_text(flow_file.read_text() + (
        "    - expect: between\n"
        "      column: name\n"
        "      kwargs: {min_value: 5}\n"
        "      severity: info\n"))
    with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as store, \
            Engine(load_project(flow_file.parent), store) as engine:
        result = engine.run("demo_accounts")
        stored = {r.rule: r for r in store.quality_results(result.run_id)}["between(name)"]
    assert result.counts["created"] == 100        # an info rule holds nothing back
    assert stored.success is False and stored.evaluated == 0 and stored.failed == 0
    assert [s["error"] for s in stored.sample] == [
        "Column values, min_value, and max_value must either be None or of the same type."]

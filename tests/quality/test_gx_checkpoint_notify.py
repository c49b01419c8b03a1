"""The ``gx/`` folder mode's Checkpoint carries two actions, Data Docs and the flow's
notifier: a sync run whose checks fail POSTs once to the ``on_dead_letters`` webhook
(a real HTTP server on localhost), a clean run not at all."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from gx_project import clean_accounts, make_project  # noqa: E402

from crm2erp.emulators.kernel.server import serve_wsgi  # noqa: E402
from crm2erp.engine import Engine  # noqa: E402
from crm2erp.mapping import load_project  # noqa: E402
from crm2erp.store import StateStore  # noqa: E402

ZIP_RULE = "regex(billing_address.postal_code)"
TAX_RULE = "tax id present"   # critical, and only for customers (``when: type = customer``)


class Hook:
    """A WSGI webhook that keeps every JSON body it was sent."""

    def __init__(self):
        self.bodies = []

    def __call__(self, environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        self.bodies.append(json.loads(environ["wsgi.input"].read(size)))
        start_response("204 No Content", [])
        return [b""]


def run_with_webhook(tmp_path, monkeypatch, bad_zips: list[int], *, accounts: int = 100,
                     batch_size: int = 50, dry_run: bool = False,
                     no_tax_ids: tuple[int, ...] = ()):
    """Batches of ``batch_size`` clean accounts, ``bad_zips`` of them with a 3-digit
    postal code (a *warning* rule: they load, so no dead letters and no run-hook POST);
    ``no_tax_ids`` of them customers without a tax id (critical: dead letters);
    a ``gx/`` folder; one sync run. The bodies the webhook got, the run, the folder."""
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))
    monkeypatch.setenv("CRM2ERP_REPORTS_DIR", "off")
    rows = clean_accounts(accounts)
    for index in bad_zips:
        rows[index]["zip"] = "123"
    for index in no_tax_ids:
        rows[index].update(vat_id=None, account_type="Customer")
    folder = make_project(tmp_path, rows, threshold="50%", batch_size=batch_size)
    (folder / "gx").mkdir()
    hook = Hook()
    with serve_wsgi(hook) as url:
        flow = folder / "accounts.flow.yaml"
        flow.write_text(flow.read_text() + f"on_dead_letters: {url}/hook\n")
        with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as store, \
                Engine(load_project(folder), store) as engine:
            result = engine.run("demo_accounts", dry_run=dry_run)
            rules = {r.rule: r for r in store.quality_results(result.run_id)}
    return hook.bodies, result, rules, folder


def test_a_failing_check_posts_once_per_run_naming_flow_run_rules_and_counts(
        tmp_path, monkeypatch):
    bodies, result, rules, folder = run_with_webhook(tmp_path, monkeypatch, bad_zips=[3, 70])
    assert result.counts["created"] == 100 and result.new_dead_letters == 0
    assert rules[ZIP_RULE].failed == 2             # one in each batch: both batches failed
    [body] = bodies                                # yet the run is told once, at the first
    assert body["event"] == "quality_checkpoint_failed"
    assert (body["flow"], body["run_id"]) == ("demo_accounts", result.run_id)
    assert body["checkpoint"] == "crm2erp.demo_accounts"
    assert body["failing"] == [{"rule": ZIP_RULE,
                                "expectation": "expect_column_values_to_match_regex",
                                "column": "billing_address.postal_code",
                                "failed": 1, "evaluated": 50}]
    assert body["message"] == (
        f"flow demo_accounts run {result.run_id}: Checkpoint crm2erp.demo_accounts failed: "
        f"rule '{ZIP_RULE}' (expect_column_values_to_match_regex on "
        "billing_address.postal_code): 1 of 50 rows failed")
    assert body["hint"] == f"crm2erp report {result.run_id}"
    assert "123" not in json.dumps(body)           # counts only, no row values

    # the saved Checkpoint lists both actions, and the notifier loads back from the file
    saved = json.loads(next((folder / "gx" / "checkpoints").rglob("*demo_accounts*"))
                       .read_text())
    assert [(a["type"], a["name"]) for a in saved["actions"]] == [
        ("update_data_docs", "data_docs"), ("crm2erp_notify", "notify")]
    assert saved["actions"][1]["flow"] == "demo_accounts"
    assert "hook" not in json.dumps(saved)         # the webhook URL is not written down
    import great_expectations as gx

    from crm2erp.quality.gx.actions import NotifyWebhookAction
    context = gx.get_context(mode="file", project_root_dir=str(folder))
    loaded = context.checkpoints.get("crm2erp.demo_accounts")
    assert [type(a).__name__ for a in loaded.actions] == ["UpdateDataDocsAction",
                                                         "NotifyWebhookAction"]
    assert isinstance(loaded.actions[1], NotifyWebhookAction)


def test_a_clean_run_posts_nothing(tmp_path, monkeypatch):
    bodies, result, rules, _ = run_with_webhook(tmp_path, monkeypatch, bad_zips=[])
    assert result.counts["created"] == 100 and result.status == "succeeded"
    assert rules[ZIP_RULE].failed == 0 and rules[ZIP_RULE].evaluated == 100
    assert bodies == []


def test_a_dry_run_posts_nothing(tmp_path, monkeypatch):
    bodies, result, rules, _ = run_with_webhook(tmp_path, monkeypatch, bad_zips=[0],
                                                accounts=20, batch_size=100, dry_run=True)
    assert result.mode == "dry_run" and rules[ZIP_RULE].failed == 1   # the check failed
    assert bodies == []


def test_a_conditional_rule_posts_the_rows_its_condition_selected_as_the_stored_result(
        tmp_path, monkeypatch):
    bodies, result, rules, _ = run_with_webhook(tmp_path, monkeypatch, bad_zips=[],
                                                no_tax_ids=(4, 9), batch_size=100)
    assert result.new_dead_letters == 2
    customers = rules[TAX_RULE].evaluated
    assert 2 <= customers < 100                    # the condition left the prospects out
    [body] = [b for b in bodies if b["event"] == "quality_checkpoint_failed"]   # beside
    assert body["failing"] == [{"rule": TAX_RULE,                          # the run's own
                                "expectation": "expect_column_values_to_not_be_null",
                                "column": "tax_id", "failed": 2, "evaluated": customers}]
    assert rules[TAX_RULE].failed == 2
    assert f"2 of {customers} rows failed" in body["message"]

"""The ``crm2erp`` command as a user runs it: real files, the command run in this
process (:mod:`tests.clirunner`); a real process where the process is what is tested
(what it imports) and one run of the installed console script."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.clirunner import run


def crm2erp(*args, cwd, env=None):
    return run(args, cwd=cwd, env={**os.environ, **(env or {}), "COLUMNS": "200"})


@pytest.mark.slow
def test_demo_runs_then_reports_no_changes(tmp_path):
    first = crm2erp("demo", "--dir", "demo", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    # the accounts flow's quality rule ran GX, which says nothing below WARNING and
    # draws no progress bars ("Created temporary directory ... for ephemeral docs site")
    assert "INFO" not in first.stderr and "docs site" not in first.stderr, first.stderr
    assert "Calculating Metrics" not in first.stderr and "it/s]" not in first.stderr
    assert "demo_accounts" in first.stdout and "demo_invoices" in first.stdout
    assert "total" in first.stdout
    assert "held back" in first.stdout           # the invalid sample rows are shown
    second = crm2erp("demo", "--dir", "demo", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "no changes" in second.stdout
    listed = crm2erp("--state", f"sqlite:///{tmp_path / 'demo' / 'state.db'}", "dlq", "list",
                     "--status", "all", cwd=tmp_path)
    assert listed.returncode == 0 and "info@@nordwind" in listed.stdout
    _quality_rule_quarantined_the_seeded_account(tmp_path / "demo")


def _quality_rule_quarantined_the_seeded_account(demo):
    """The accounts flow's ``quality:`` rule holds back A-0052 (tax id 'n/a'): a dead
    letter of stage quality naming the rule, and no such customer in the ERP."""
    from crm2erp.demo.sample import QUALITY_ACCOUNTS
    listed = crm2erp("-p", str(demo / "project"), "dlq", "list", "--json", cwd=demo)
    assert listed.returncode == 0, listed.stderr
    letters = {d["source_key"]: d for d in json.loads(listed.stdout)["dead_letters"]
               if d["stage"] == "quality"}
    assert set(letters) == set(QUALITY_ACCOUNTS) == {"A-0052"}
    rule = QUALITY_ACCOUNTS["A-0052"][2]
    assert letters["A-0052"]["flow"] == "demo_accounts"
    assert f"rule '{rule}'" in letters["A-0052"]["error"]
    assert "'N/A'" in letters["A-0052"]["error"]
    assert letters["A-0052"]["payload"]["vat_id"] == "n/a"
    with sqlite3.connect(demo / "erp.db") as erp:
        vats = [v for (v,) in erp.execute("SELECT vat FROM customers")]
    with sqlite3.connect(demo / "crm.db") as crm:
        (written_back,) = crm.execute("SELECT erp_customer_no FROM accounts WHERE id = ?",
                                      ("A-0052",)).fetchone()
    assert len(vats) == 115 and "N/A" not in vats and all(v for v in vats)
    assert written_back is None


SAY_IF_GX = """\
import sys
from crm2erp.cli.app import main
for extra in ([], ["--full-refresh"]):
    code = main(sys.argv[1:] + extra)
    print("exit code:", code, "great_expectations imported:",
          "great_expectations" in sys.modules)
"""


def test_a_sync_with_nothing_new_to_check_does_not_import_great_expectations(tmp_path,
                                                                            demo_copies):
    """The accounts flow's quality gate imports GX (seconds) only for a batch with rows:
    right after the demo nothing is new; a full refresh reads every account again.
    One fresh process runs both syncs, one after the other."""
    demo = demo_copies(tmp_path / "demo")
    done = subprocess.run([sys.executable, "-c", SAY_IF_GX, "-p", str(demo.project),
                           "sync", "run", "demo_accounts"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    said = [line for line in done.stdout.splitlines() if line.startswith("exit code:")]
    nothing_new, everything = said
    assert nothing_new == "exit code: 0 great_expectations imported: False", done.stdout
    assert everything.endswith("great_expectations imported: True"), done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


HIDE_GX = """\
import sys
sys.modules["great_expectations"] = None   # as if `pip install -e .` (no quality extra)
from crm2erp.cli.app import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_the_demo_without_great_expectations_says_which_extra_to_install(tmp_path):
    """README command 1 installs the ``quality`` extra; without it the demo's quality
    rule cannot run: exit 2 and one message naming the extra, no traceback."""
    done = subprocess.run([sys.executable, "-c", HIDE_GX, "demo", "--accounts", "10"],
                          cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "configuration error: flow 'demo_accounts' has quality rules" in done.stderr
    assert "pip install 'crm2erp[quality]'" in done.stderr


BAD_FLOW = """\
flow: accounts
entity: Account
sorce: {connection: crm, stream: accounts, mapping: a.map.yaml}
target: {connection: erp, stream: customers, mapping: b.map.yaml}
incremental:
  cursor: updated_at
  batch_size: lots
"""


def test_validate_names_file_line_column_and_exits_2(tmp_path):
    path = tmp_path / "bad.flow.yaml"
    path.write_text(BAD_FLOW)
    result = crm2erp("mappings", "validate", str(path), cwd=tmp_path)
    assert result.returncode == 2
    out = result.stdout
    assert f"{path}:3:1" in out and "sorce" in out and "source" in out   # misspelt key
    assert f"{path}:7:15" in out and "integer" in out                    # wrong type
    assert "Traceback" not in out + result.stderr


def test_validate_shipped_demo_project_is_clean(tmp_path):
    """Run by the installed ``crm2erp`` console script, end to end in its own process."""
    from crm2erp.mappings import pack_dir

    script = Path(sys.executable).parent / "crm2erp"
    result = subprocess.run([str(script), "mappings", "validate", str(pack_dir("demo"))],
                            cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "CRM2ERP_DEMO_DIR": str(tmp_path),
                                 "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: 19 file(s) valid" in result.stdout, result.stdout


def test_config_errors_exit_2_without_traceback(tmp_path):
    result = crm2erp("-p", str(tmp_path / "nowhere"), "sync", "run", cwd=tmp_path)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def _project(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (tmp_path / "crm").mkdir()
    (tmp_path / "erp").mkdir()
    (tmp_path / "crm" / "accounts.csv").write_text(textwrap.dedent("""\
        id,name,email,updated_at
        1,Alpha,alpha@example.com,2026-01-01T00:00:00+00:00
        2,Beta,not-an-email,2026-01-02T00:00:00+00:00
        """))
    (project / "connections.yaml").write_text(textwrap.dedent(f"""\
        connections:
          crm: {{type: file, path: {tmp_path / 'crm'}, format: csv,
                streams: {{accounts: {{file: accounts.csv, key: id, cursor: updated_at}}}}}}
          erp: {{type: file, path: {tmp_path / 'erp'}, format: jsonl,
                streams: {{customers: {{file: customers.jsonl, key: ref}}}}}}
        """))
    (project / "accounts.flow.yaml").write_text(textwrap.dedent("""\
        flow: accounts
        entity: Account
        source: {connection: crm, stream: accounts, mapping: in.map.yaml}
        target: {connection: erp, stream: customers, mapping: out.map.yaml}
        incremental: {cursor: updated_at, lookback: 1m}
        """))
    (project / "in.map.yaml").write_text(textwrap.dedent("""\
        mapping: in
        direction: inbound
        entity: Account
        fields:
          name: {from: name}
          email: {from: email, transforms: [email]}
          updated_at: {from: updated_at, transforms: [datetime]}
        """))
    (project / "out.map.yaml").write_text(textwrap.dedent("""\
        mapping: out
        direction: outbound
        entity: Account
        fields:
          ref: {from: id}
          name: {from: name}
          email: {from: email}
        """))
    return project


def test_sync_status_dlq_round_trip_on_files(tmp_path):
    project = _project(tmp_path)
    state = ["-p", str(project), "--state", f"sqlite:///{tmp_path / 'state.db'}"]
    dry = crm2erp(*state, "sync", "run", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 1 and "create" in dry.stdout
    assert not (tmp_path / "erp" / "customers.jsonl").exists()
    run = crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)
    assert run.returncode == 1, run.stderr       # finished, with one dead letter
    lines = (tmp_path / "erp" / "customers.jsonl").read_text().splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["Alpha"]
    listed = crm2erp(*state, "dlq", "list", cwd=tmp_path)
    assert "not-an-email" in listed.stdout
    letter_id = listed.stdout.split("│")[1].strip() if "│" in listed.stdout else "1"
    shown = crm2erp(*state, "dlq", "show", letter_id, cwd=tmp_path)
    assert shown.returncode == 0 and '"name": "Beta"' in shown.stdout
    status = crm2erp(*state, "status", cwd=tmp_path)
    assert status.returncode == 0 and "accounts" in status.stdout
    again = crm2erp(*state, "sync", "run", "--json", cwd=tmp_path)
    # the lookback reads Beta again and it fails again: this run's record, so exit 1
    assert again.returncode == 1, again.stdout
    (flow,) = json.loads(again.stdout)["flows"]
    assert flow["status"] == "partial" and flow["counts"]["failed"] == 1
    assert flow["new_dead_letters"] == 0          # the same dead letter, not a second one
    listed = crm2erp(*state, "dlq", "list", "--json", cwd=tmp_path)
    assert [x["source_key"] for x in json.loads(listed.stdout)["dead_letters"]] == ["2"]
    discarded = crm2erp(*state, "dlq", "discard", "--all", cwd=tmp_path)
    assert "discarded 1" in discarded.stdout
    missing = crm2erp(*state, "dlq", "show", "999", cwd=tmp_path)
    assert missing.returncode == 2 and "999" in missing.stderr


def test_explain_traces_every_field(tmp_path):
    project = _project(tmp_path)
    record = json.dumps({"id": "9", "name": " Gamma ", "email": " G@Example.com",
                         "updated_at": "2026-01-01T00:00:00Z"})
    result = crm2erp("-p", str(project), "--state", f"sqlite:///{tmp_path / 's.db'}",
                     "mappings", "explain", "accounts", "--record", record, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "g@example.com" in result.stdout and "email" in result.stdout


def test_schemas_export_writes_json(tmp_path):
    result = crm2erp("schemas", "export", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    schema = json.loads((tmp_path / "out" / "Account.schema.json").read_text())
    assert "name" in schema["properties"]


def test_version_prints_the_installed_version(tmp_path):
    from importlib.metadata import version

    result = crm2erp("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"crm2erp {version('crm2erp')}"
    assert not list(tmp_path.iterdir())   # nothing written


def test_piped_output_is_not_cut_to_80_columns(tmp_path):
    """In a pipe or a CI log (no terminal, no COLUMNS) tables keep their full width."""
    project = _project(tmp_path)
    state = ["-p", str(project), "--state", f"sqlite:///{tmp_path / 'state.db'}"]
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)
    listed = run([*state, "dlq", "list"], cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "…" not in listed.stdout
    assert "not-an-email" in listed.stdout and max(map(len, listed.stdout.splitlines())) > 80


def test_a_folder_without_connections_yaml_is_not_scanned(tmp_path):
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "x.flow.yaml").write_text("flow: [unclosed\n")
    result = crm2erp("status", cwd=tmp_path)
    assert result.returncode == 2
    assert "no connections.yaml" in result.stderr and "x.flow.yaml" not in result.stderr


def test_project_file_names_the_state_store_and_a_typo_is_reported(tmp_path):
    project = _project(tmp_path)
    (project / "crm2erp.yaml").write_text(f"state: sqlite:///{tmp_path / 'own.db'}\n")
    run = crm2erp("-p", str(project), "sync", "run", "accounts", cwd=tmp_path)
    assert run.returncode == 1, run.stderr            # one dead letter, as above
    assert (tmp_path / "own.db").is_file() and not (tmp_path / "crm2erp-state.db").exists()
    listed = crm2erp("-p", str(project), "dlq", "list", cwd=tmp_path)
    assert "not-an-email" in listed.stdout
    (project / "crm2erp.yaml").write_text("stat: sqlite:///x.db\n")
    bad = crm2erp("-p", str(project), "status", cwd=tmp_path)
    assert bad.returncode == 2 and "crm2erp.yaml:1:1" in bad.stderr, bad.stderr


def test_help_loads_no_engine_airflow_gx_or_pandas(tmp_path):
    """`crm2erp --help` stays fast: heavy packages load only in the commands that use them."""
    code = ("import sys\nfrom crm2erp.cli.app import _register_commands\n_register_commands()\n"
            "heavy = {'airflow', 'great_expectations', 'pandas', 'alembic', 'sqlalchemy',\n"
            "         'starlette', 'uvicorn', 'pydantic'}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy\n"
            "             or m.startswith(('crm2erp.engine', 'crm2erp.connectors'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_successful_retry_exits_0_while_other_letters_stay_open(tmp_path):
    project = _project(tmp_path)
    csv = tmp_path / "crm" / "accounts.csv"
    csv.write_text(csv.read_text() + "3,Gamma,also-bad,2026-01-03T00:00:00+00:00\n")
    state = ["-p", str(project), "--state", f"sqlite:///{tmp_path / 'state.db'}"]
    crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)
    letters = json.loads(crm2erp(*state, "dlq", "list", "--json", cwd=tmp_path).stdout)
    by_key = {x["source_key"]: x["id"] for x in letters["dead_letters"]}
    assert set(by_key) == {"2", "3"}
    csv.write_text(csv.read_text().replace("not-an-email", "beta@example.com"))
    fixed = crm2erp(*state, "dlq", "retry", str(by_key["2"]), cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    names = [json.loads(line)["name"]
             for line in (tmp_path / "erp" / "customers.jsonl").read_text().splitlines()]
    assert sorted(names) == ["Alpha", "Beta"]
    failing = crm2erp(*state, "dlq", "retry", str(by_key["3"]), cwd=tmp_path)
    assert failing.returncode == 1 and "still held back: #" in failing.stdout

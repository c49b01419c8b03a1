"""One meaning per exit code and one status rule in every mode (issue 14).

The same failing record gives the same run status and exit code under a plain
run, ``--since`` and ``--full-refresh``; the dry run says it in its own words.
A quality gate stops a run with 4, an unreachable system gives 3, and the table
of docs/cli.md is the one the commands use.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from crm2erp.cli.app import main
from crm2erp.cli.exitcodes import TABLE, for_status
from tests.cli.test_json_output import CSV, fill_project  # row 2 has no name

ROOT = Path(__file__).resolve().parents[2]
MODES = {"plain": [], "since": ["--since", "2020-01-01"], "full_refresh": ["--full-refresh"]}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """``crm2erp init``'s CSV -> SQLite project, one of its two rows without a name."""
    monkeypatch.chdir(tmp_path)
    assert main(["init", "proj"]) == 0
    for name, value in fill_project(tmp_path).items():
        monkeypatch.setenv(name, value)
    for name in ("CRM2ERP_PROJECT", "CRM2ERP_STATE_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "proj"


def _sync(capsys, *args) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["-p", "proj", "sync", "run", "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)["flows"][0]


@pytest.mark.parametrize("first", list(MODES))
def test_the_same_failure_gives_the_same_status_and_exit_code_in_every_mode(
        project, capsys, first):
    order = [first] + [m for m in MODES if m != first]
    seen = {}
    for mode in order:
        code, flow = _sync(capsys, *MODES[mode])
        seen[mode] = (code, flow["status"], flow["counts"]["failed"], flow["dead_letters"])
    # read again or not, the run that reads the failing record ends the same way
    assert seen[first] == (1, "partial", 1, 1)
    assert seen["since"] == seen["full_refresh"] == (1, "partial", 1, 1)
    code, dry = _sync(capsys, "--dry-run", "--full-refresh")
    assert (code, dry["status"], dry["counts"]["failed"]) == (1, "would dead-letter", 1)
    # the dead letters hold the record once, whatever the mode and how often it failed
    capsys.readouterr()
    assert main(["-p", "proj", "dlq", "list", "--json"]) == 0
    letters = json.loads(capsys.readouterr().out)["dead_letters"]
    assert [(x["source_key"], x["status"]) for x in letters] == [("2", "open")]


def test_older_dead_letters_do_not_count_and_a_fixed_record_succeeds_in_every_mode(
        project, capsys, tmp_path):
    assert _sync(capsys)[0] == 1
    newer = "3,Cham AG,x@cham.example,Cham,CH,2024-01-05T10:00:00Z\n"
    (tmp_path / "data" / "accounts.csv").write_text(CSV + newer, encoding="utf-8")
    code, flow = _sync(capsys)   # the cursor is inclusive: row 2 is read (and fails) again
    assert (code, flow["status"], flow["counts"]["read"]) == (1, "partial", 2)
    code, flow = _sync(capsys)   # reads row 3 only; row 2's open letter is an older one
    assert (code, flow["status"], flow["counts"]["read"]) == (0, "succeeded", 1)
    capsys.readouterr()
    assert main(["-p", "proj", "dlq", "list", "--json"]) == 0
    assert [x["source_key"] for x in json.loads(capsys.readouterr().out)["dead_letters"]] \
        == ["2"]
    (tmp_path / "data" / "accounts.csv").write_text(
        CSV.replace("2,,nobody", "2,Bern AG,nobody").replace("2024-01-02", "2024-01-06")
        + newer, encoding="utf-8")
    for args in ([], ["--since", "2020-01-01"], ["--full-refresh"]):
        code, flow = _sync(capsys, *args)
        assert (code, flow["status"], flow["dead_letters"]) == (0, "succeeded", 0), args
    code, dry = _sync(capsys, "--dry-run", "--full-refresh")
    assert (code, dry["status"]) == (0, "would succeed")
    with sqlite3.connect(tmp_path / "erp.db") as conn:
        assert sorted(conn.execute("SELECT name FROM customers")) == [
            ("Acme GmbH",), ("Bern AG",), ("Cham AG",)]


QUALITY = """\
quality:
  threshold: 10%
  rules:
    - expect: regex
      column: billing_address.city
      kwargs: {regex: "^B"}
"""


def test_a_quality_gate_stops_the_run_with_status_stopped_and_exit_4(project, capsys,
                                                                      tmp_path):
    (tmp_path / "data" / "accounts.csv").write_text(
        CSV.replace("2,,nobody", "2,Zug AG,nobody").replace(",Bern,", ",Zug,"),
        encoding="utf-8")
    flow = project / "accounts.flow.yaml"
    flow.write_text(flow.read_text() + QUALITY, encoding="utf-8")
    assert main(["-p", "proj", "quality", "run", "accounts"]) == 4
    capsys.readouterr()
    assert main(["-p", "proj", "sync", "run"]) == 4
    assert "quality gate" in capsys.readouterr().err
    assert main(["-p", "proj", "status", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["flows"]
    assert row["last_run"]["status"] == "stopped"
    with sqlite3.connect(tmp_path / "erp.db") as conn:   # stopped before the write
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (0,)


def test_an_unreachable_target_exits_3_and_the_run_is_failed(project, capsys, monkeypatch,
                                                              tmp_path):
    monkeypatch.setenv("ERP_DATABASE_URL",
                       "postgresql+psycopg://nobody@127.0.0.1:9/nowhere?connect_timeout=2")
    assert main(["-p", "proj", "sync", "run"]) == 3
    assert "Traceback" not in capsys.readouterr().err
    assert main(["-p", "proj", "status", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["flows"]
    assert row["last_run"]["status"] == "failed"


def test_a_run_status_maps_onto_one_exit_code():
    assert for_status([]) == 0
    assert for_status(["succeeded", "partial"]) == 1
    assert for_status(["partial", "failed", "succeeded"]) == 3
    assert for_status(["failed", "stopped"]) == 4


def test_the_documented_table_is_the_one_the_commands_use():
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = page.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    assert [int(line.split("|")[1].strip(" `")) for line in section.splitlines()
            if line.startswith("| `")] == [code for code, _ in TABLE] == [0, 1, 2, 3, 4]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/cli.md#exit-codes" in readme and "75" not in readme.split("Exit codes", 1)[1][:600]

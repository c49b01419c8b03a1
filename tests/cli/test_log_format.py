"""``--log-format json``: every line on stderr is one JSON object, and the lines
of a run carry its flow, run id, batch and partition (issue 14)."""

from __future__ import annotations

import json
import os

import pytest

from crm2erp.demo import create_systems, write_project
from crm2erp.demo.sample import sample_crm_rows
from tests.clirunner import run

FIELDS = {"ts", "level", "logger", "message", "flow", "run_id", "batch", "partition"}


@pytest.fixture
def demo(tmp_path):
    create_systems(f"sqlite:///{tmp_path}/crm.db", f"sqlite:///{tmp_path}/erp.db",
                   sample_crm_rows(accounts=30))
    return write_project(tmp_path, tmp_path / "state.db", fresh=True)


def _cli(*args, cwd):
    env = {k: v for k, v in os.environ.items()
           if k not in ("CRM2ERP_PROJECT", "CRM2ERP_STATE_URL", "CRM2ERP_LOG_FORMAT")}
    return run(args, cwd=cwd, env=env)


def _lines(stderr: str) -> list[dict]:
    lines = [json.loads(line) for line in stderr.splitlines()]   # every line, or it fails
    for line in lines:
        assert set(line) >= FIELDS, line
    return lines


def test_sync_run_logs_one_json_object_per_line_with_the_run_context(demo, tmp_path):
    done = _cli("--log-format", "json", "-v", "-p", str(demo), "sync", "run", "--json",
                cwd=tmp_path)
    assert done.returncode == 1, done.stderr         # the demo holds records back
    runs = {f["flow"]: f["run_id"] for f in json.loads(done.stdout)["flows"]}
    lines = _lines(done.stderr)
    in_runs = [x for x in lines if x["flow"] is not None]
    assert {x["flow"] for x in in_runs} == set(runs)
    for line in in_runs:
        assert line["run_id"] == runs[line["flow"]], line
        assert line["partition"] is None and line["batch"] >= 0
    finished = {x["flow"]: x for x in in_runs if x["logger"] == "crm2erp.engine.runner"
                and f"run {x['run_id']} " in x["message"]}
    assert set(finished) == set(runs)                 # each run's last line names it
    assert all(x["level"] == "INFO" for x in finished.values())
    accounts = finished["demo_accounts"]     # 30 accounts: one batch read
    assert accounts["batch"] == 1
    assert accounts["message"].startswith(f"flow demo_accounts run {runs['demo_accounts']} ")
    assert accounts["ts"].endswith("+00:00")


def test_a_configuration_error_is_one_json_line_too(demo, tmp_path):
    done = _cli("--log-format", "json", "-p", str(demo), "sync", "run", "no_such_flow",
                cwd=tmp_path)
    assert done.returncode == 2
    (line,) = _lines(done.stderr)
    assert line["level"] == "ERROR" and "no_such_flow" in line["message"]
    assert line["flow"] is None and line["run_id"] is None


def test_an_unknown_log_format_is_a_usage_error(tmp_path):
    done = _cli("--log-format", "xml", "status", cwd=tmp_path)
    assert done.returncode == 2 and "--log-format" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_debug_puts_the_redacted_traceback_into_the_json_line(tmp_path):
    (tmp_path / "connections.yaml").write_text(
        "connections:\n  crm: {type: sql, url: 'postgresql+psycopg://u:s3cret-pw@127.0.0.1:9/x'"
        "}\n", encoding="utf-8")
    done = _cli("--log-format", "json", "--debug", "--state", "sqlite://", "check",
                cwd=tmp_path)
    assert done.returncode == 2
    lines = _lines(done.stderr)
    errors = [x for x in lines if x["level"] == "ERROR"]
    assert errors and "exception" in errors[-1] and "Traceback" in errors[-1]["exception"]
    assert "s3cret-pw" not in done.stderr + done.stdout

"""``crm2erp mappings validate`` builds each flow's quality rules with Great
Expectations as the gate does, so a rule GX rejects is a problem before any run
(the gate imports GX only at the first batch with rows): the command (run in this
process; a real one that cannot import GX) on a copy of the demo project."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from crm2erp.mappings import pack_dir
from tests.clirunner import run

HIDE_GX = """\
import sys
sys.modules["great_expectations"] = None   # as if `pip install -e .` (no quality extra)
from crm2erp.cli.app import main
sys.exit(main(sys.argv[1:]))
"""


def validate(project, *extra, hide_gx: bool = False):
    args = ["mappings", "validate", "--offline", *extra, str(project)]
    env = {**os.environ, "COLUMNS": "200", "CRM2ERP_DEMO_DIR": str(project.parent)}
    if not hide_gx:
        return run(args, cwd=project.parent, env=env)
    # a fresh process: this one may have imported GX already
    return subprocess.run([sys.executable, "-c", HIDE_GX, *args], cwd=project.parent,
                          capture_output=True, text=True, env=env)


@pytest.fixture
def demo(tmp_path):
    """A copy of the demo project whose accounts rule names ``expect_..._match_regx``."""
    project = tmp_path / "demo"
    shutil.copytree(pack_dir("demo"), project, ignore=shutil.ignore_patterns("__*"))
    flow = project / "accounts.flow.yaml"
    text = flow.read_text()
    assert "      expect: regex\n" in text
    flow.write_text(text.replace("      expect: regex\n",
                                 "      expect: expect_column_values_to_match_regx\n"))
    return project


def test_a_misspelled_expectation_exits_2_naming_file_line_flow_rule_and_gx(demo):
    done = validate(demo)
    assert done.returncode == 2, done.stdout + done.stderr
    flow = demo / "accounts.flow.yaml"
    line = flow.read_text().splitlines().index("    - name: tax id is a VAT number   "
                                               "# a country prefix and 8-12 letters/digits")
    [problem] = [ln for ln in done.stdout.splitlines() if "match_regx" in ln]
    assert problem.startswith(f"{flow}:{line + 1}:")
    assert "flow 'demo_accounts': rule 'tax id is a VAT number'" in problem
    assert "unknown Great Expectations expectation" in problem
    assert "did you mean 'expect_column_values_to_match_regex'?" in problem
    assert "1 problem(s)" in done.stdout and "Traceback" not in done.stdout + done.stderr


def test_json_lists_the_rule_problem(demo):
    done = validate(demo, "--json")
    assert done.returncode == 2, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    [problem] = report["problems"]
    assert problem["file"] == str(demo / "accounts.flow.yaml") and problem["line"] > 0
    assert "rule 'tax id is a VAT number'" in problem["message"]
    assert "expect_column_values_to_match_regex" in problem["message"]


def test_wrong_arguments_are_reported_with_gx_message(demo):
    flow = demo / "accounts.flow.yaml"
    flow.write_text(flow.read_text().replace("expect_column_values_to_match_regx", "regex")
                    .replace('kwargs: {regex: "^[A-Z]{2}[0-9A-Z]{8,12}$"}',
                             "kwargs: {pattern: x}"))
    done = validate(demo)
    assert done.returncode == 2, done.stdout + done.stderr
    [problem] = [ln for ln in done.stdout.splitlines() if "wrong arguments" in ln]
    assert "flow 'demo_accounts': rule 'tax id is a VAT number'" in problem
    assert "(expect_column_values_to_match_regex)" in problem
    assert "pattern\n  extra fields not permitted" in done.stdout      # GX's own words


def test_the_shipped_demo_rules_pass(demo):
    flow = demo / "accounts.flow.yaml"
    flow.write_text(flow.read_text().replace("expect_column_values_to_match_regx", "regex"))
    done = validate(demo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok" in done.stdout


def test_without_great_expectations_the_rules_are_not_checked_and_it_says_what_to_install(
        demo):
    done = validate(demo, hide_gx=True)
    assert done.returncode == 2, done.stdout + done.stderr
    [problem] = [ln for ln in done.stdout.splitlines() if "Great Expectations" in ln]
    assert problem.startswith(f"{demo / 'accounts.flow.yaml'}:")
    assert "flow 'demo_accounts' has quality rules" in problem
    assert problem.split(": ", 1)[1].startswith("rules not checked: ")
    assert "pip install 'crm2erp[quality]'" in problem
    assert "Traceback" not in done.stdout + done.stderr

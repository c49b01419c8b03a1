"""The README's quick start: exactly two set-up commands, and CI runs the second."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_quick_start_has_a_demo_command_and_a_test_command():
    demo, tests = _quick_start_commands()
    assert demo.endswith("crm2erp demo") and "pip install" in demo
    assert tests.endswith("pytest") and "pip install" in tests
    assert "-e '.[dev]'" in tests   # everything from the project's own files


def test_ci_runs_the_readme_test_command_verbatim():
    _, tests = _quick_start_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci


def _using_it_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Using it", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_using_it_runs_in_order_right_after_the_demo(tmp_path):
    """The README's "Using it" block, typed as a user would, right after `crm2erp demo`
    in the same folder: no command fails, none prints a traceback, and nothing
    but the demo folder and what the commands were asked to write appears."""
    import os

    from tests.clirunner import run as run_cli  # in this process, as a child sees it

    env = {k: v for k, v in os.environ.items()
           if k not in ("CRM2ERP_PROJECT", "CRM2ERP_STATE_URL", "CRM2ERP_DEMO_DIR")}

    def run(argv: list[str]) -> subprocess.CompletedProcess:
        assert argv[0] == "crm2erp"
        return run_cli(argv[1:], cwd=tmp_path, env=env)

    demo = run(["crm2erp", "demo"])
    assert demo.returncode == 0, demo.stderr
    assert "crm2erp -p crm2erp-demo/project status" in demo.stdout   # the next steps
    outputs, codes = {}, []
    for line in _using_it_commands():
        argv = shlex.split(line, comments=True)
        done = run(argv)
        assert "Traceback" not in done.stdout + done.stderr, line
        codes.append((" ".join(argv[3:6] if argv[1] == "-p" else argv[1:]), done.returncode))
        outputs[" ".join(argv[3:5])] = done
    # the exit-code table (docs/cli.md#exit-codes): 1 where this run's records are held
    # back (the demo's invalid e-mails, contacts of a missing account) or rules fail
    assert codes == [
        ("mappings validate", 0), ("mappings explain demo_accounts", 0), ("sync run", 1),
        ("sync run demo_orders", 0), ("sync run demo_accounts", 1),
        ("sync run demo_accounts", 1), ("status", 0), ("conflicts", 0), ("dlq list", 0),
        ("dlq show 1", 0), ("dlq retry 1", 1), ("quality run demo_accounts", 1),
        ("reconcile demo_accounts", 0), ("report 1", 0), ("dlq discard 2", 0),
        ("unlock demo_accounts", 0), ("check", 0), ("status --json", 0),
        ("schemas export --out json-schemas", 0), ("--version", 0)], codes
    assert "valid" in outputs["mappings validate"].stdout
    assert outputs["mappings explain"].returncode == 0
    assert "A-0007" in outputs["dlq list"].stdout             # the demo's invalid e-mail
    assert '"email": "info@@nordwind-logistics.example"' in outputs["dlq show"].stdout
    assert "run-1.html" in outputs["report 1"].stdout
    assert "discarded 1" in outputs["dlq discard"].stdout
    assert (tmp_path / "json-schemas" / "Account.schema.json").is_file()
    # one state store: the demo's; no second one appeared in the working folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm2erp-demo", "json-schemas"]


def test_the_readme_benchmark_runs_and_checks_the_output(tmp_path):
    """The performance section's command, at a small size: it prints the table and
    the row-for-row comparison of the engine's and the loop's output."""
    import subprocess
    import sys

    text = (ROOT / "README.md").read_text().split("## Performance", 1)[1]
    command = re.search(r"```bash\n(.*?)\n```", text, re.S).group(1)
    assert command == "python benchmarks/engine.py --records 10000 --repeat 3"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "engine.py"),
                           "--records", "60", "--repeat", "1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "| full sync" in done.stdout
    assert "output tables: equal, 56 rows" in done.stdout
    # the database taking the state store's rows alone, measured after the full sync
    state_row = next(line for line in done.stdout.splitlines() if "| state rows alone" in line)
    assert state_row.split("|")[2].strip() == "db"


def _tier_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Running the tests", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


# a few files whose marks differ: plain, PostgreSQL/MariaDB, Airflow, browser
_SAMPLE = ["tests/http/test_client.py", "tests/store/test_locks.py",
           "tests/airflow/test_parse_hygiene.py", "tests/quality/test_report_demo.py"]


# one interpreter collects for every command in turn (pytest.main once per command):
# each collection parses its command's own options, as a fresh `pytest` would, but
# pytest, the plug-ins and the sample's imports load once instead of once a command
_COLLECT_EACH = """\
import json, sys
import pytest
for args in json.loads(sys.argv[1]):
    print("@@@ collection", flush=True)
    code = pytest.main(args)
    print("@@@ exit", int(code), flush=True)
"""


def _selected(*commands: str) -> list[list[str]]:
    """For each README ``command``, the ids of the tests it selects among the sample's."""
    runs = []
    for command in commands:
        args = shlex.split(command)
        assert args[0] == ".venv/bin/pytest", command
        paths = [a for a in args[1:] if a.startswith("tests/")]
        options = [a for a in args[1:] if a not in paths]
        runs.append([*options, "-n", "0", "--collect-only", "-q", "-p", "no:cacheprovider",
                     *(paths or _SAMPLE)])
    done = subprocess.run([sys.executable, "-c", _COLLECT_EACH, json.dumps(runs)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    parts = done.stdout.split("@@@ collection\n")[1:]
    assert len(parts) == len(commands), done.stdout[-3000:]
    selected = []
    for part in parts:
        lines = part.splitlines()
        assert lines[-1] in ("@@@ exit 0", "@@@ exit 5"), part[-3000:] + done.stderr[-3000:]
        selected.append([line for line in lines if "::" in line])
    return selected


def _files(ids: list[str]) -> set[str]:
    return {i.split("::")[0] for i in ids}


@pytest.mark.slow   # four pytest collections
def test_the_test_tiers_select_what_the_readme_says():
    quick, no_programs, no_servers, one_file = _tier_commands()
    plain, servers, airflow, browser = _SAMPLE
    by_quick, by_no_programs, local, by_one_file = _selected(quick, no_programs, no_servers,
                                                             one_file)
    assert _files(by_quick) == _files(by_no_programs) == {plain, servers}
    assert _files(local) == set(_SAMPLE)
    assert not [i for i in local if "[postgres]" in i or "[mariadb]" in i]
    assert any(i.startswith(servers) and i.endswith("[sqlite]") for i in local)
    assert _files(by_one_file) == {servers}

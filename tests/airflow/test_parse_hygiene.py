"""Parse-time hygiene of the DAG files: no Variable/Connection at parse time
(ruff's AIR rules), a project scan cached by file mtimes, and one broken flow
file costing only its own DAG."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from crm2erp.mappings import pack_dir
from crm2erp.orchestration import scan_cache
from crm2erp.orchestration.projects import project_dirs, scan_projects, shipped_project_dirs

REPO = Path(__file__).resolve().parents[2]
RUFF = [sys.executable, "-m", "ruff", "check", "--no-cache", "--preview", "--select", "AIR"]


def test_ruff_airflow_rules_pass_on_the_dag_files_and_the_factory():
    done = subprocess.run([*RUFF, "dags", "crm2erp/orchestration"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_airflow_rules_do_catch_a_variable_read_at_parse_time(tmp_path):
    dag_file = tmp_path / "bad_dag.py"
    dag_file.write_text("from airflow.sdk import DAG, Variable\n\n"
                        "PROJECT = Variable.get('crm2erp_project')\n\n"
                        "with DAG('x', schedule=None):\n    pass\n")
    done = subprocess.run([*RUFF, str(dag_file)], capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "airflow-variable-get-outside-task" in done.stdout and "bad_dag.py:3:" in done.stdout


def test_project_folders_come_from_the_environment_not_an_airflow_variable(monkeypatch):
    monkeypatch.delenv("CRM2ERP_PROJECT", raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_CRM2ERP_PROJECT", "/nowhere/project")
    assert project_dirs() == shipped_project_dirs()
    monkeypatch.setenv("CRM2ERP_PROJECT", f"/a{os.pathsep}/b")
    assert project_dirs() == [Path("/a"), Path("/b")]


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    shutil.copytree(pack_dir("demo"), root)
    return root


def test_the_scan_is_reused_until_a_file_changes(tmp_path):
    root = _project(tmp_path)
    first = scan_projects([root])
    assert scan_projects([root]) is first  # nothing changed: no second parse
    flow = root / "orders.flow.yaml"
    stat = flow.stat()
    flow.write_text(flow.read_text().replace("flow: demo_orders", "flow: demo_orders2"))
    os.utime(flow, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = scan_projects([root])
    assert second is not first
    assert "demo_orders2" in second.flows and "demo_orders" not in second.flows
    # a mapping file changing counts too (here: made invalid)
    mapping = root / "maps" / "crm_account.in.map.yaml"
    mapping.write_text("mapping: [unclosed\n")
    os.utime(mapping, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    third = scan_projects([root])
    assert third is not second and "demo_accounts" not in third.flows
    assert any(i.file.endswith("crm_account.in.map.yaml") for i in third.issues)


def test_the_variables_the_files_name_are_part_of_the_cache_key(tmp_path, monkeypatch):
    root = _project(tmp_path)
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path / "one"))
    first = scan_projects([root])
    monkeypatch.setenv("CRM2ERP_SOMETHING_NEW", "1")   # no file names it
    assert scan_projects([root]) is first
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path / "two"))   # connections.yaml does
    second = scan_projects([root])
    assert second is not first


def test_a_new_process_reuses_the_scan_kept_on_disk(tmp_path):
    """Airflow parses each DAG file in a fresh process: the scan kept on disk is
    used there while no file changed, and a changed file is scanned again."""
    root = _project(tmp_path)
    first = scan_projects([root])
    scan_cache.clear_memory()                 # what a fresh process starts with
    again = scan_projects([root])
    assert again is not first and again.flows.keys() == first.flows.keys()
    assert again.flows["demo_accounts"].flow == first.flows["demo_accounts"].flow
    scan_cache.clear_memory()
    flow = root / "orders.flow.yaml"
    stat = flow.stat()
    flow.write_text(flow.read_text().replace("flow: demo_orders", "flow: demo_orders2"))
    os.utime(flow, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert "demo_orders2" in scan_projects([root]).flows


def test_a_cache_folder_others_may_write_is_not_used(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv(scan_cache.CACHE_DIR_ENV, str(shared))
    root = _project(tmp_path)
    first = scan_projects([root])
    assert list(shared.iterdir()) == []       # nothing written where others may write
    scan_cache.clear_memory()
    assert scan_projects([root]).flows.keys() == first.flows.keys()   # scanned again


BROKEN_ACCOUNTS = "flow: demo_accounts\nentity: Account\nsource: {connection: crm, stream: [\n"


def test_a_broken_flow_costs_only_its_own_dag_and_its_dependants_name_the_file(tmp_path):
    root = _project(tmp_path)
    broken = root / "accounts.flow.yaml"
    broken.write_text(BROKEN_ACCOUNTS)
    result = scan_projects([root])
    # contacts, orders and balances depend on demo_accounts: they keep their DAGs
    assert set(result.flows) == {"demo_contacts", "demo_orders", "demo_invoices",
                                 "demo_order_status", "demo_balances"}
    by_file = {}
    for issue in result.issues:
        by_file.setdefault(Path(issue.file).name, []).append(issue.message)
    assert set(by_file) == {"accounts.flow.yaml", "contacts.flow.yaml", "orders.flow.yaml",
                            "balances.flow.yaml"}
    for dependant in ("contacts.flow.yaml", "orders.flow.yaml", "balances.flow.yaml"):
        (message,) = by_file[dependant]
        assert f"depends on flow 'demo_accounts', whose file {broken} has problems" in message
        assert "unknown flow" not in message
    assert "YAML syntax error" in by_file["accounts.flow.yaml"][0]


def test_under_airflow_the_broken_file_is_the_only_import_error(airflow, tmp_path,
                                                                monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    root = _project(tmp_path)
    (root / "accounts.flow.yaml").write_text(BROKEN_ACCOUNTS)
    monkeypatch.setenv("CRM2ERP_PROJECT", str(root))
    scan_cache.clear_memory()
    bag = DagBag(dag_folder=str(airflow.dags))
    (path, message), = bag.import_errors.items()
    assert path.endswith("crm2erp_config_errors.py")
    assert f"{root / 'accounts.flow.yaml'}:" in message
    assert f"depends on flow 'demo_accounts', whose file {root / 'accounts.flow.yaml'}" \
        in message
    assert "demo_accounts" not in bag.dag_ids
    assert {"demo_contacts", "demo_orders", "demo_balances"} <= set(bag.dag_ids)


def test_the_readme_dag_parse_benchmark_runs_and_prints_its_table():
    """The README's parse-time command, at a small size: the table with the
    pass, the floor and their ratio."""
    text = (REPO / "README.md").read_text().split("### DAG parse time", 1)[1]
    command = re.search(r"```bash\n(.*?)\n```", text, re.S).group(1)
    assert command == "python benchmarks/dag_parse.py --sizes 10 100 500 --repeat 3"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "dag_parse.py"),
                           "--sizes", "3", "--repeat", "1"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    header, _, row = done.stdout.strip().splitlines()
    assert header.startswith("| flows | pass ms/flow | floor ms/flow | pass / floor")
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "3" and cells[3].endswith("x") and float(cells[1]) > 0

"""``crm2erp airflow install-dags DIR`` copies the DAG files shipped in the
package, and Airflow lists the demo's DAGs from that folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from crm2erp.mappings import pack_dir

REPO_DAGS = Path(__file__).resolve().parents[2] / "dags"


def crm2erp(*args):
    return subprocess.run([sys.executable, "-m", "crm2erp", *args], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"})


def test_install_dags_then_airflow_lists_the_demo_dags(airflow, airflow_own_db, tmp_path):
    target = tmp_path / "airflow" / "dags"
    done = crm2erp("airflow", "install-dags", str(target))
    assert done.returncode == 0, done.stderr
    shipped = sorted(p.name for p in REPO_DAGS.glob("crm2erp_*.py"))
    assert sorted(p.name for p in target.iterdir()) == shipped
    for name in shipped:
        assert (target / name).read_bytes() == (REPO_DAGS / name).read_bytes()

    # a metadata database of its own: the session's one already knows the demo DAGs
    # from the repository's dags/ folder (same DAG ids, another file location)
    env = {"AIRFLOW__CORE__DAGS_FOLDER": str(target), "CRM2ERP_PROJECT": str(pack_dir("demo")),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_own_db}
    listed = airflow.json(airflow.run("dags", "list", "--local", "-o", "json", env=env))
    dag_ids = {row["dag_id"] for row in listed}
    assert {"demo_accounts", "demo_contacts", "demo_orders", "demo_invoices"} <= dag_ids
    assert all(row["fileloc"].startswith(str(target)) for row in listed
               if row["dag_id"].startswith("demo_"))


def test_install_dags_into_a_file_is_a_config_error(tmp_path):
    (tmp_path / "dags").write_text("not a folder")
    done = crm2erp("airflow", "install-dags", str(tmp_path / "dags"))
    assert done.returncode == 2 and "is not a folder" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr

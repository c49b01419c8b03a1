"""The wheel installs anywhere: built from this checkout (once a test run, the
``built_wheel`` fixture), installed with the ``airflow`` extra into a fresh
virtualenv (no access to the checkout), its shipped DAG files installed with
``crm2erp airflow install-dags`` and listed by that venv's Airflow, and
``pip check`` clean.

The fresh venv sees the test environment's installed distributions (a ``.pth``
line naming its site-packages, whose own ``.pth`` files, among them the editable
crm2erp's, are not read) and pip runs with ``--no-index``: pip resolves the
wheel's ``Requires-Dist`` with the ``airflow`` extra against them and fails on
any requirement they do not satisfy, with no index to fall back on. Fetching
Airflow's ~200 distributions from an index would cost minutes of network, and
proves what tests/test_packaging.py checks without it: each imported package
declared in the right extra, and the built wheel's pins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_DAGS = {"demo_accounts", "demo_contacts", "demo_orders", "demo_invoices"}


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None,
        timeout: int = 900) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AIRFLOW", "CRM2ERP_", "VIRTUAL_ENV", "PYTHON"))}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} exited {done.returncode}\n" \
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_the_wheel_installs_in_a_fresh_venv_and_airflow_lists_the_demo_dags(tmp_path,
                                                                          built_wheel,
                                                                          airflow_own_db):
    started = time.monotonic()
    venv = tmp_path / "venv"
    # no pip of its own (ensurepip costs seconds): the test environment's pip, seen
    # through the .pth line below, runs on the venv's python and installs into it
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    bin_ = venv / "bin"
    pip = (bin_ / "python", "-m", "pip")
    purelib = run(bin_ / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                  cwd=tmp_path).stdout.strip()
    (Path(purelib) / "_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # no .pyc compiling: it is most of an install's time, and Python compiles on import
    run(*pip, "install", "--disable-pip-version-check", "--no-compile", "--no-index", "-q",
        f"{built_wheel}[airflow]", cwd=tmp_path)
    installed = time.monotonic()
    # the package comes from the venv, not from this checkout
    where = run(bin_ / "python", "-c", "import crm2erp; print(crm2erp.__file__)",
                cwd=tmp_path).stdout.strip()
    assert where.startswith(str(venv)), where

    dags = tmp_path / "airflow" / "dags"
    run(bin_ / "crm2erp", "airflow", "install-dags", dags, cwd=tmp_path)
    assert sorted(p.name for p in dags.glob("*.py")) == \
        sorted(p.name for p in (REPO / "dags").glob("crm2erp_*.py"))
    env = {"AIRFLOW_HOME": str(tmp_path / "airflow"),
           "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           # a copy of the run's migrated metadata database (same Airflow version)
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_own_db,
           "CRM2ERP_CACHE_DIR": str(tmp_path / "cache")}
    # `python -m airflow` runs the `airflow` script's entry point (its script is in the
    # test environment's bin/), with this venv's crm2erp
    airflow = (bin_ / "python", "-m", "airflow")
    listed = run(*airflow, "dags", "list", "--local", "-o", "json",
                 cwd=tmp_path, env=env).stdout
    rows = next(json.loads(line) for line in listed.splitlines() if line.startswith("["))
    by_id = {row["dag_id"]: row for row in rows}
    assert DEMO_DAGS <= set(by_id), sorted(by_id)
    assert all(by_id[d]["fileloc"].startswith(str(dags)) for d in DEMO_DAGS)

    checked = run(*pip, "check", "--disable-pip-version-check", cwd=tmp_path)
    assert "No broken requirements found" in checked.stdout
    print(f"wheel install test: pip install {installed - started:.0f}s, "
          f"total {time.monotonic() - started:.0f}s")

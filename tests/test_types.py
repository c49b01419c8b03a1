"""mypy passes on the core: crm2erp/engine, crm2erp/store, crm2erp/mapping and the
connector contract (settings in pyproject.toml, ``[tool.mypy]``)."""

import subprocess
import sys
from pathlib import Path

import pytest

from crm2erp.testing.once import installed_key, kept_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow   # a whole mypy check (7-9 s with no cache): started early, not last
def test_mypy_passes_on_the_core():
    # mypy's incremental cache is kept for later runs on this machine, a folder per set
    # of installed packages (mypy and its plug-in among them): a later run, a fresh clone
    # too, re-checks only the modules whose text changed (mypy compares their hashes)
    cache = kept_folder("mypy-cache", installed_key())
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(cache)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout
    checked = int(done.stdout.split(" in ")[-1].split()[0])
    assert checked >= 40   # the engine, store, mapping and contract modules were all read

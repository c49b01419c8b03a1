"""mypy passes on the core: crm2erp/engine, crm2erp/store, crm2erp/mapping and the
connector contract (settings in pyproject.toml, ``[tool.mypy]``)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow   # a whole mypy check (9 s on a fresh clone): started early, not last
def test_mypy_passes_on_the_core():
    # mypy's incremental cache in the checkout's .mypy_cache (git ignores it): a later
    # run re-reads only what changed; a fresh clone pays the full check once
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(ROOT / ".mypy_cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout
    checked = int(done.stdout.split(" in ")[-1].split()[0])
    assert checked >= 40   # the engine, store, mapping and contract modules were all read

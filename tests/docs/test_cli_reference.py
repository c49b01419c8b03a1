"""docs/cli.md is generated from the CLI: it fails here when a command changed
without regenerating the page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_fresh(tmp_path):
    out = tmp_path / "cli.md"
    done = subprocess.run([sys.executable, "-m", "crm2erp.cli.docgen", str(out)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    fresh = out.read_text(encoding="utf-8")
    for command in ("crm2erp init", "crm2erp check", "crm2erp sync run", "crm2erp dlq show"):
        assert f"## `{command}`" in fresh
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == fresh, (
        "docs/cli.md is stale: run `python -m crm2erp.cli.docgen docs/cli.md`")


def test_readme_links_the_cli_reference():
    assert "(docs/cli.md)" in (ROOT / "README.md").read_text(encoding="utf-8")

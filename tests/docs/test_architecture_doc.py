"""docs/architecture.md stays true: the files it names exist, every entry point group
crm2erp declares is described, and the README links the page."""

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture.md"
TEXT = PAGE.read_text(encoding="utf-8")


def _repo_path(installed: str) -> Path:
    """``crm2erp/connectors/sql/source.py`` -> the repository's ``connectors/sql/source.py``."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    mapping = dict(line.replace(" ", "").split("=")
                   for line in config["options"]["package_dir"].splitlines() if line.strip())
    parts = installed.rstrip("/").split("/")
    for n in range(len(parts), 0, -1):
        package = ".".join(parts[:n])
        if package in mapping:
            return ROOT / mapping[package] / "/".join(parts[n:])
    return ROOT / installed


def test_every_file_the_page_names_exists():
    named = set(re.findall(r"`((?:crm2erp|tests)/[\w/.]+)`", TEXT))
    assert len(named) > 20
    missing = sorted(p for p in named if not _repo_path(p).exists())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_every_entry_point_group_is_described():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    groups = [g for g in config["options.entry_points"] if g.startswith("crm2erp.")]
    assert {"crm2erp.connectors", "crm2erp.stages", "crm2erp.hooks",
            "crm2erp.emulators"} <= set(groups)
    undescribed = [g for g in groups if f"`{g}`" not in TEXT]
    assert not undescribed, f"entry point groups missing from the page: {undescribed}"


def test_the_readme_links_the_page():
    assert "(docs/architecture.md)" in (ROOT / "README.md").read_text(encoding="utf-8")

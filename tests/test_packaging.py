"""Guards for the package_dir layout (see README, 'Layout')."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"crm2erp": "crm2erp", "connectors": "crm2erp.connectors",
          "schemas": "crm2erp.schemas", "quality": "crm2erp.quality",
          "mappings": "crm2erp.mappings"}


def _expected_packages() -> set[str]:
    expected = set()
    for folder, package in MAPPED.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            expected.add(".".join([package, *rel.parts]) if rel.parts else package)
    return expected


@pytest.mark.slow
def test_wheel_contains_every_package(tmp_path):
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                    "--outdir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("crm2erp-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    packages = {"/".join(n.split("/")[:-1]).replace("/", ".")
                for n in names if n.endswith("__init__.py")}
    missing = _expected_packages() - packages
    assert not missing, f"sub-packages missing from the wheel (add them to setup.cfg): {missing}"
    assert any(n.startswith("crm2erp/schemas/json/") for n in names)
    assert any(n.startswith("crm2erp/mappings/demo/") and n.endswith(".yaml") for n in names)


def test_no_bare_imports_of_mapped_folders():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "TID251",
                             "crm2erp", "connectors", "schemas", "quality", "dags", "tests"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_whole_tree_passes_ruff():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout

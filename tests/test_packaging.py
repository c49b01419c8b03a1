"""Guards for the package_dir layout (see README, 'Layout')."""

import ast
import configparser
import re
import subprocess
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest

import crm2erp

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
def test_wheel_contains_every_package(built_wheel):
    names = zipfile.ZipFile(built_wheel).namelist()
    packages = {"/".join(n.split("/")[:-1]).replace("/", ".")
                for n in names if n.endswith("__init__.py")}
    missing = _expected_packages() - packages
    assert not missing, f"sub-packages missing from the wheel (add them to setup.cfg): {missing}"
    assert any(n.startswith("crm2erp/schemas/json/") for n in names)
    assert any(n.startswith("crm2erp/mappings/demo/") and n.endswith(".yaml") for n in names)
    # the DAG files, for `crm2erp airflow install-dags`
    assert {"crm2erp/dags/crm2erp_flows.py", "crm2erp/dags/crm2erp_config_errors.py"} <= \
        set(names)
    # the console's pages and stylesheet ship in the wheel (no CDN, no build step)
    assert {"crm2erp/console/templates/overview.html",
            "crm2erp/console/static/console.css"} <= set(names)


def test_no_bare_imports_of_mapped_folders():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "TID251",
                             "crm2erp", "connectors", "schemas", "quality", "dags", "tests"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_whole_tree_passes_ruff():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# -- declared dependencies -------------------------------------------------
# where a module's imports must be declared: folder -> extra (None = install_requires)
AREAS = {"quality": "quality", "crm2erp/orchestration": "airflow", "dags": "airflow",
         "crm2erp/lineage": "lineage", "crm2erp/console": "console",
         "connectors/tryton": "tryton",
         # the matching benchmark's generator packs columns with numpy, as the matcher does
         "crm2erp/testing/company_accounts.py": "quality"}
# imported, yet rightly not declared: the pytest11 plugin is loaded by pytest only
NOT_DECLARED = {"pytest": "crm2erp/testing/conformance.py is loaded by pytest itself",
                "filelock": "crm2erp/testing/once.py serves the test suite (the dev extra)"}


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def _dist(requirement: str) -> str:
    name = re.split(r"[\[<>=!~; ]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(cfg: configparser.ConfigParser, extra: str | None) -> set[str]:
    lines = cfg["options"]["install_requires"].splitlines()
    if extra is not None:
        lines += cfg["options.extras_require"][extra].splitlines()
    return {_dist(line) for line in lines if line.strip() and not line.startswith("#")}


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> the shipped files importing it (stdlib and crm2erp left out)."""
    found: dict[str, set[str]] = {}
    for folder in ("crm2erp", "connectors", "schemas", "quality", "dags"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top != "crm2erp":
                        found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


# meta-packages: what users install, while the modules come from their parts
META = {"apache-airflow"}


def _provided_by(requirement: str) -> set[str]:
    """The distribution, and for a meta-package its direct parts (apache-airflow ->
    apache-airflow-core, -task-sdk...). Other transitive dependencies do not
    count: a module imported directly is declared directly."""
    if requirement not in META:
        return {requirement}
    try:
        deps = requires(requirement) or []
    except PackageNotFoundError:
        deps = []
    return {requirement, *(_dist(d) for d in deps if "extra ==" not in d)}


def test_every_imported_package_is_declared_in_the_right_extra():
    cfg = _setup_cfg()
    dists = packages_distributions()
    imports = _third_party_imports()
    assert {"sqlalchemy", "airflow", "great_expectations", "pandas"} <= set(imports)
    problems = []
    for module, files in sorted(imports.items()):
        if module in NOT_DECLARED:
            continue
        providers = {_dist(d) for d in dists.get(module, [])}
        assert providers, f"{module} (imported by {sorted(files)}) is not installed"
        for file in sorted(files):
            extra = next((e for area, e in AREAS.items()
                          if file == area or file.startswith(area + "/")), None)
            declared = _declared(cfg, extra)
            if not any(providers & _provided_by(req) for req in declared):
                where = f"[{extra}] extra" if extra else "install_requires"
                problems.append(f"{file} imports {module} ({', '.join(sorted(providers))}), "
                                f"not in {where}")
    assert problems == []


def test_the_tryton_extra_is_the_client_and_tryton_server_the_local_server():
    extras = _setup_cfg()["options.extras_require"]
    client = {_dist(line) for line in extras["tryton"].splitlines() if line.strip()}
    server = {_dist(line) for line in extras["tryton-server"].splitlines() if line.strip()}
    assert not any(name.startswith(("trytond", "proteus")) for name in client)
    assert {"trytond", "trytond-sale", "trytond-stock-forecast", "proteus"} <= server
    assert "tryton-server" in extras["dev"].split("[", 1)[1].split("]")[0].split(",")


def test_pins_are_lower_bounds_with_the_next_major_excluded():
    extras = _setup_cfg()["options.extras_require"]
    assert "apache-airflow>=3.3,<4" in extras["airflow"].split()
    assert "great-expectations>=1.24,<2" in extras["quality"].split()


def test_one_version_source_license_and_classifiers():
    metadata = _setup_cfg()["metadata"]
    assert metadata["version"].strip() == "attr: crm2erp.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+", crm2erp.__version__)
    license_text = (ROOT / "LICENSE").read_text()
    assert metadata["license"] == "Apache-2.0"
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    classifiers = set(metadata["classifiers"].split("\n"))
    assert {f"Programming Language :: Python :: 3.{minor}" for minor in (11, 12, 13)} \
        <= classifiers
    assert "Framework :: Apache Airflow :: Provider" in classifiers


@pytest.mark.slow
def test_the_built_wheel_carries_version_license_and_pins(built_wheel):
    assert built_wheel.name.startswith(f"crm2erp-{crm2erp.__version__}-")
    names = zipfile.ZipFile(built_wheel).namelist()
    meta = zipfile.ZipFile(built_wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert any(n.endswith("LICENSE") for n in names)
    assert "Requires-Dist: apache-airflow<4,>=3.3; extra == \"airflow\"" in meta
    assert "Requires-Dist: pandas>=2.1; extra == \"quality\"" in meta
    assert "Classifier: Programming Language :: Python :: 3.13" in meta
    # `pip install crm2erp[tryton]` still resolves, and installs no server
    assert "Provides-Extra: tryton\n" in meta and 'extra == "tryton"' not in meta
    assert 'Requires-Dist: trytond==8.2.*; extra == "tryton-server"' in meta

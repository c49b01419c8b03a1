"""The layers hold (import-linter), the core loads no plug-in, the error tree is drawn whole.

See docs/architecture.md. The folders connectors/, quality/... install as
``crm2erp.*`` through ``package_dir``, which an import graph of the source tree
cannot see; :func:`_installed_layout` lays the sources out as they are
installed (the wheel's layout) so import-linter reads the whole package.
"""

from __future__ import annotations

import ast
import configparser
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import crm2erp.errors as errors_module
from crm2erp.errors import Crm2ErpError

ROOT = Path(__file__).resolve().parents[1]
CORE = ("crm2erp.engine", "crm2erp.store", "crm2erp.mapping", "crm2erp.http",
        "crm2erp.contract", "crm2erp.registry")
PLUGINS = ("crm2erp.connectors", "crm2erp.quality", "crm2erp.emulators")


def _package_dirs() -> dict[str, Path]:
    """package -> source folder, from setup.cfg's package_dir."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    pairs = (line.split("=") for line in config["options"]["package_dir"].splitlines()
             if line.strip())
    return {package.strip(): ROOT / folder.strip() for package, folder in pairs}


def _installed_layout(into: Path) -> Path:
    """The Python sources copied as installed: crm2erp/, crm2erp/connectors/..."""
    for package, folder in sorted(_package_dirs().items()):
        target = into.joinpath(*package.split("."))
        shutil.copytree(folder, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.yaml",
                                                      "*.json", "*.html", "*.css", "*.j2"))
    return into


def test_import_linter_contracts_hold(tmp_path):
    """`lint-imports` with the contracts in pyproject.toml: the layers, the core
    importing no plug-in, and no cycle between the modules of any package."""
    layout = _installed_layout(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": str(layout)}
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
    # the graph was built from the copied tree (connectors included), not the editable install
    assert "crm2erp.connectors" in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("module", CORE)
def test_the_core_loads_no_plugin_module(module):
    code = (f"import sys, {module}\n"
            f"print('\\n'.join(m for m in sys.modules if m.startswith({PLUGINS!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    assert done.stdout.split() == [], f"{module} imported {done.stdout.split()}"


def test_the_connectors_load_no_emulator():
    """A connector talks to its system over the wire only: loading every connector
    (as `crm2erp.registry` does) loads no module of the emulators' wing."""
    code = ("import sys\nfrom crm2erp.registry import CONNECTORS, load_all\n"
            "loaded = [name for name, _ in load_all(CONNECTORS)]\n"
            "print(' '.join(loaded))\n"
            "print(' '.join(m for m in sys.modules if m.startswith('crm2erp.emulators')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    loaded, emulators = (done.stdout.splitlines() + ["", ""])[:2]
    assert {"salesforce", "sap", "odoo", "hubspot", "dynamics"} <= set(loaded.split())
    assert emulators.split() == [], f"the connectors imported {emulators}"


def _error_modules() -> list[str]:
    """Modules of the installed package defining a class that derives, directly or
    not, from Crm2ErpError; found by reading the sources, without importing them."""
    classes: dict[str, tuple[str, set[str]]] = {}   # class name -> (module, base names)
    for package, folder in _package_dirs().items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("").parts
            module = ".".join([package, *rel]).removesuffix(".__init__")
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                             for b in node.bases}
                    classes[node.name] = (module, bases)
    errors = {"Crm2ErpError"}
    while True:
        more = {name for name, (_, bases) in classes.items() if bases & errors} - errors
        if not more:
            return sorted({classes[name][0] for name in errors})
        errors |= more


def _subclasses(cls: type) -> list[type]:
    """The project's own subclasses; a test's plug-in (another module) may subclass too."""
    found = []
    for sub in cls.__subclasses__():
        own = sub.__module__.split(".")[0] == "crm2erp"
        found += [sub] * own + _subclasses(sub)
    return found


def test_every_error_class_is_drawn_in_the_tree_of_crm2erp_errors():
    for module in _error_modules():
        importlib.import_module(module)
    tree = errors_module.__doc__
    every = _subclasses(Crm2ErpError)
    assert {"OdooRecordError", "TrytonUserError", "QualityGateError"} <= {
        c.__name__ for c in every}   # the plug-ins' errors were found and imported
    for cls in [Crm2ErpError, *every]:
        line = next((ln for ln in tree.splitlines() if f" {cls.__name__} " in f" {ln} "), None)
        assert line is not None, f"{cls.__module__}.{cls.__name__} is not in the tree"
        if cls.__module__ != "crm2erp.errors":
            assert cls.__module__ in tree or "same module" in line, cls
    for cls in every:   # drawn under its parent: deeper indentation than the parent
        parent = cls.__mro__[1]
        lines = tree.splitlines()
        at = next(i for i, ln in enumerate(lines) if f" {cls.__name__} " in f" {ln} ")
        above = [ln for ln in lines[:at] if f" {parent.__name__} " in f" {ln} "]
        assert above, f"{cls.__name__} is drawn above its parent {parent.__name__}"
        assert lines[at].index(cls.__name__) > above[-1].index(parent.__name__)

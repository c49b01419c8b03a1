"""Find the projects Airflow should schedule and read their flows at parse time.

This module does not import Airflow: the DAG factory and the tests call it,
and it only reads YAML. Parsing must not need the run-time secrets (the DAG
processor usually has none), so ``${VAR}`` values are not expanded here: a
missing variable becomes a marker (:data:`UNSET`) that the run-time loader in
:mod:`crm2erp.orchestration.runtime` reports, unless an Airflow Connection
replaces the value.
"""

from __future__ import annotations

__all__ = [
    "PROJECT_ENV",
    "FlowEntry",
    "ScanResult",
    "MarkingEnv",
    "unset_variables",
    "required_variables",
    "project_dirs",
    "shipped_project_dirs",
    "scan_projects",
]

import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm2erp.errors import ConfigError, ConfigIssue
from crm2erp.mapping import load_flow
from crm2erp.mapping.loader import validate_project
from crm2erp.mapping.models import FlowSpec
from crm2erp.mapping.yamlpos import UNSET
from crm2erp.mapping.yamlpos import UNSET_RX as _UNSET_RX
from crm2erp.orchestration import scan_cache

log = logging.getLogger(__name__)

PROJECT_ENV = "CRM2ERP_PROJECT"


# ``${NAME}`` without a ``:-default`` (``$${`` is an escaped, literal ``${``)
_REQUIRED_RX = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def required_variables(root: str | Path) -> frozenset[str]:
    """The variables the project's ``connections.yaml`` uses without a default."""
    try:
        text = (Path(root) / "connections.yaml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):  # the loader reports the file itself
        return frozenset()
    return frozenset(_REQUIRED_RX.findall(text))


class MarkingEnv(Mapping[str, str]):
    """``os.environ`` in which every missing variable reads as a marker.

    Loading ``connections.yaml`` through it never fails for a missing
    variable; :func:`unset_variables` finds the markers afterwards. A missing
    variable written with a default (``${VAR:-default}``) keeps its default:
    only the names in ``required`` (or every name, when ``required`` is None)
    read as markers. A name used both with and without a default is marked
    in both places (an Airflow Connection or the variable must provide it).
    """

    def __init__(self, base: Mapping[str, str] | None = None,
                 required: frozenset[str] | None = None):
        self.base = os.environ if base is None else base
        self.required = required

    @classmethod
    def for_project(cls, root: str | Path,
                    base: Mapping[str, str] | None = None) -> MarkingEnv:
        """The environment to load the project at ``root`` with."""
        return cls(base, required_variables(root))

    def __getitem__(self, name: str) -> str:
        if name in self.base:
            return self.base[name]
        if self.required is None or name in self.required:
            return UNSET.format(name)
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return name in self.base or self.required is None or name in self.required

    def __iter__(self) -> Iterator[str]:
        return iter(self.base)

    def __len__(self) -> int:
        return len(self.base)


def unset_variables(value: Any) -> list[str]:
    """The names of the environment variables still unset inside ``value``."""
    if isinstance(value, str):
        return _UNSET_RX.findall(value)
    if isinstance(value, Mapping):
        return [n for v in value.values() for n in unset_variables(v)]
    if isinstance(value, list | tuple):
        return [n for v in value for n in unset_variables(v)]
    return []


@dataclass(frozen=True)
class FlowEntry:
    """One flow to schedule: its spec and the project folder it belongs to."""

    flow: FlowSpec
    root: Path

    @property
    def name(self) -> str:
        return self.flow.flow


@dataclass
class ScanResult:
    flows: dict[str, FlowEntry] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)

    def error(self) -> ConfigError | None:
        """One ConfigError listing every problem (file:line: message), or None."""
        if not self.issues:
            return None
        files = sorted({i.file for i in self.issues})
        noun = "file has" if len(files) == 1 else "files have"
        return ConfigError(f"crm2erp: {len(files)} {noun} problems; a flow whose own "
                           "files have problems has no DAG until they are fixed",
                           self.issues)


def shipped_project_dirs() -> list[Path]:
    """The packs shipped in ``crm2erp.mappings`` that define flows (demo first).

    A pack is a folder with ``connections.yaml`` and ``*.flow.yaml`` files, at
    any depth (``demo/``, ``packs/salesforce-sap/``...)."""
    from crm2erp.mappings import pack_dir

    demo = pack_dir("demo")
    # a project is a folder with connections.yaml and flow files (packs may be nested)
    others = sorted(c.parent for c in demo.parent.rglob("connections.yaml")
                    if c.parent != demo and any(c.parent.glob("*.flow.yaml")))
    return [demo, *others]


def project_dirs(value: str | None = None) -> list[Path]:
    """Project folders: ``value``, else ``$CRM2ERP_PROJECT``, else the shipped
    packs. Several folders may be given separated by ``os.pathsep`` (``:`` on
    Linux). No Airflow Variable is read: DAG files are parsed often and must not
    query the metadata database or the API server at parse time."""
    value = value or os.environ.get(PROJECT_ENV)
    if not value:
        return shipped_project_dirs()
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def _flow_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.flow.yaml")
                  if not any(part.startswith(".") for part in p.relative_to(root).parts))


_FLOW_NAME_RX = re.compile(r"^flow:[ \t]*[\"']?([A-Za-z0-9_.-]+)", re.M)
_UNKNOWN_PARENT_RX = re.compile(r"depends on unknown flow '([^']+)'")


def _declared_flow(path: Path) -> str | None:
    """The ``flow:`` name a broken flow file declares, if it can be told."""
    try:
        found = _FLOW_NAME_RX.search(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    return found.group(1) if found else None


def _blame_broken_parents(issues: list[ConfigIssue], flow_files: list[Path],
                          bad_files: set[Path]) -> tuple[list[ConfigIssue], set[ConfigIssue]]:
    """A flow whose parent's file is broken is told so, and keeps its DAG.

    Loading reports it as "depends on unknown flow": the parent has no spec
    because its file does not load. The message is made to name that file,
    and the issue no longer counts against the dependant's own file: the
    issues, and those of them that leave the file usable."""
    broken = {name: path for path in flow_files if path.resolve() in bad_files
              for name in [_declared_flow(path)] if name}
    out, notes = [], set()
    for issue in issues:
        found = _UNKNOWN_PARENT_RX.search(issue.message)
        if found and found.group(1) in broken:
            parent = found.group(1)
            issue = ConfigIssue(issue.file, issue.line, issue.column, (
                f"depends on flow {parent!r}, whose file {broken[parent]} has problems "
                "(listed here); this flow keeps its DAG, which runs on that flow's asset "
                "again once the file is fixed"))
            notes.add(issue)
        out.append(issue)
    return out, notes


def _scan_one(root: Path, result: ScanResult) -> None:
    issues = validate_project(root, env=MarkingEnv.for_project(root))
    flow_files = _flow_files(root) if root.is_dir() else []
    issues, notes = _blame_broken_parents(
        issues, flow_files, {Path(i.file).resolve() for i in issues if i.file})
    result.issues += issues
    bad_files = {Path(i.file).resolve() for i in issues if i.file and i not in notes}
    if (root / "connections.yaml").resolve() in bad_files or not root.is_dir():
        return  # nothing in this project can run
    for path in flow_files:
        if path.resolve() in bad_files:
            continue
        try:
            flow = load_flow(path)
        except ConfigError:  # already among the project's issues
            continue
        if {flow.source_mapping_path, flow.target_mapping_path} & bad_files:
            continue
        if not flow.enabled:
            log.info("flow %s is disabled (enabled: false); no DAG", flow.flow)
            continue
        if flow.flow in result.flows:
            other = result.flows[flow.flow].flow.source_file
            result.issues.append(ConfigIssue(str(path), None, None,
                                             f"flow name {flow.flow!r} is already used by "
                                             f"{other}; DAG ids must be unique"))
            continue
        result.flows[flow.flow] = FlowEntry(flow, root.resolve())


def _mappings(result: ScanResult) -> set[Path]:
    return {path for entry in result.flows.values()
            for path in (entry.flow.source_mapping_path, entry.flow.target_mapping_path)}


def scan_projects(dirs: list[Path] | None = None) -> ScanResult:
    """Every valid, enabled flow of the projects, and every problem found.

    Kept (in this process and on disk, see
    :mod:`~crm2erp.orchestration.scan_cache`) while no YAML file under the
    folders (nor a mapping a flow uses) changed its mtime or size and the
    environment variables the files name keep their values."""
    roots = tuple(str(Path(r).resolve()) for r in (project_dirs() if dirs is None else dirs))
    kept = scan_cache.cached_scan(roots, _mappings)
    if kept is not None:
        return kept
    before = scan_cache.fingerprint(roots)
    result = ScanResult()
    for root in roots:
        _scan_one(Path(root), result)
    result.issues = sorted(dict.fromkeys(result.issues),
                           key=lambda i: (i.file, i.line or 0, i.column or 0))
    after = scan_cache.fingerprint(roots, _mappings(result))
    if set(before) <= set(after):  # no file changed while it was read
        scan_cache.keep_scan(roots, after, result)
    return result

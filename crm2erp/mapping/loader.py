"""Load and check mapping, flow and connection files, alone or as a project.

Every loader collects *all* problems of a file and raises one
:class:`ConfigError` whose ``issues`` carry file:line:column. A project is a
directory with ``connections.yaml`` and any number of ``*.flow.yaml`` files
(at any depth); flows name their ``*.map.yaml`` files relative to themselves.
:func:`validate_project` also checks what no single file can: unknown
connections, missing mapping files, entity/direction mismatches, unknown or
cyclic ``depends_on`` and duplicate flow names.
"""

from __future__ import annotations

__all__ = [
    "load_mapping",
    "load_flow",
    "load_connections",
    "load_project",
    "project_state_url",
    "PROJECT_FILE",
    "validate_project",
    "validate_connections",
    "Project",
]

import os
from collections.abc import Mapping
from pathlib import Path

from crm2erp.errors import ConfigError, ConfigIssue
from crm2erp.mapping.files import (
    Project,
    load_mapping,
    raise_issues,
    read_flow,
    sorted_issues,
)
from crm2erp.mapping.models import ConnectionsFile, ConnectionSpec, FlowSpec
from crm2erp.mapping.secrets import register_connection_secrets
from crm2erp.mapping.validation import did_you_mean, issues_from_validation, validate_doc
from crm2erp.mapping.yamlpos import YamlDoc, interpolate_env, load_yaml, unset_positions

CONNECTIONS_FILE = "connections.yaml"
PROJECT_FILE = "crm2erp.yaml"   # optional project settings (today: where its state lives)


def _connector_issues(doc: YamlDoc, name: str) -> list[ConfigIssue]:
    """The connection's settings checked by its connector's ``Config`` model."""
    from pydantic import ValidationError

    from crm2erp.registry import available, load_connector_class

    raw = doc.data["connections"][name]
    base = ("connections", name)
    try:
        cls = load_connector_class(raw["type"])
    except ConfigError:
        known = sorted(available())
        hint = did_you_mean(raw["type"], known) or f" (known: {', '.join(known)})"
        return [doc.issue(base + ("type",), f"unknown connector type {raw['type']!r}{hint}")]
    settings = {k: v for k, v in raw.items() if k not in ("type", "airflow_conn_id")}
    try:
        cls.Config.model_validate(settings)
    except ValidationError as exc:
        return issues_from_validation(exc, doc, cls.Config, base,
                                      skip_missing=bool(raw.get("airflow_conn_id")))
    return []


def _read_connections(
    path: Path, env: Mapping[str, str], *, settings: bool = False
) -> tuple[dict[str, ConnectionSpec] | None, list[ConfigIssue]]:
    """``settings``: also check each connection's settings with its connector."""
    doc = load_yaml(path)
    used: list = []
    issues = list(doc.issues) + interpolate_env(doc, env, used)
    register_connection_secrets(doc.data, used)
    parsed, more = validate_doc(doc, ConnectionsFile)
    issues += more
    if parsed is not None and settings:
        # a value "" for a missing ${VAR}, or a marker an Airflow Connection may replace
        unset = {(i.line, i.column) for i in issues} | unset_positions(doc)
        for name in parsed.connections:
            issues += [i for i in _connector_issues(doc, name)
                       if (i.line, i.column) not in unset]
    if parsed is None or issues:
        return None, sorted_issues(issues)
    out = {}
    for name in parsed.connections:
        raw = dict(doc.data["connections"][name])
        conn_type = raw.pop("type")
        conn_id = raw.pop("airflow_conn_id", None)  # used by crm2erp.orchestration only
        line = doc.keys.get(("connections", name), (None, None))[0]
        out[name] = ConnectionSpec(name, conn_type, raw, path.resolve(), line, conn_id)
    return out, []


def load_flow(path: str | os.PathLike[str]) -> FlowSpec:
    """Parse one ``*.flow.yaml``; cross references are checked by the project."""
    spec, issues = read_flow(Path(path))
    if spec is None:
        raise_issues("flow file", Path(path), issues)
    return spec


def load_connections(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> dict[str, ConnectionSpec]:
    """Parse ``connections.yaml``, expanding ``${VAR}`` from ``env`` (default os.environ)."""
    conns, issues = _read_connections(Path(path), os.environ if env is None else env)
    if conns is None:
        raise_issues("connections file", Path(path), issues)
    return conns


def _flow_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*.flow.yaml")
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _scan(root: Path, env: Mapping[str, str], *, deep: bool = False, reflect: bool = False,
          notes: list[str] | None = None) -> tuple[Project, list[ConfigIssue]]:
    """``deep``: also check connector settings and the flows against their connectors'
    streams, as ``mappings validate`` does (``reflect``: look at live schemas too)."""
    from crm2erp.mapping.crossref import check_flows

    issues: list[ConfigIssue] = []
    root = root.resolve()
    if not root.is_dir():
        return Project(root, {}, {}), [ConfigIssue(str(root), None, None,
                                                   "project directory not found")]
    conn_path = root / CONNECTIONS_FILE
    conns: dict[str, ConnectionSpec] | None = None
    if conn_path.is_file():
        conns, more = _read_connections(conn_path, env, settings=deep)
        issues += more
    else:   # not a project: its sub-folders are not scanned for flows
        return Project(root, {}, {}), [ConfigIssue(
            str(conn_path), None, None, f"no {CONNECTIONS_FILE} in the project directory; "
            "create it, or point --project / CRM2ERP_PROJECT at a project folder")]
    flows: dict[str, FlowSpec] = {}
    for path in _flow_files(root):
        spec, more = read_flow(path)
        issues += more
        if spec is None:
            continue
        if spec.flow in flows:
            first = flows[spec.flow].source_file
            issues.append(spec.doc.issue(("flow",), f"flow name {spec.flow!r} is already "
                                          f"used by {first}; flow names must be unique"))
            continue
        flows[spec.flow] = spec
    project = Project(root, conns or {}, flows)
    issues += check_flows(project, checked_connections=conns is not None)
    if deep and conns is not None:
        from crm2erp.mapping.streamcheck import check_streams

        issues += check_streams(project, reflect=reflect,
                                notes=notes if notes is not None else [])
    return project, sorted_issues(issues)


def validate_project(
    root: str | os.PathLike[str], env: Mapping[str, str] | None = None, *,
    reflect: bool = False, notes: list[str] | None = None, flows: list | None = None,
) -> list[ConfigIssue]:
    """Every problem in the project at ``root``; an empty list means it is valid.

    Beyond what loading checks, connector settings are checked by each connector
    and the mappings against the fields each stream declares; with ``reflect``
    also against the live schema of reachable databases. What could not be
    checked (a database that is not reachable) is appended to ``notes``, and the
    flow specs that parsed (for checks beyond the files: quality rules) to ``flows``.
    """
    project, issues = _scan(Path(root), os.environ if env is None else env, deep=True,
                            reflect=reflect, notes=notes)
    if flows is not None:
        flows.extend(project.flows.values())
    return issues


def validate_connections(path: str | os.PathLike[str],
                         env: Mapping[str, str] | None = None) -> list[ConfigIssue]:
    """Every problem in one ``connections.yaml``, its connectors' settings included."""
    return _read_connections(Path(path), os.environ if env is None else env,
                             settings=True)[1]


def load_project(root: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Project:
    """Load and fully check a project; raise ConfigError listing every problem."""
    project, issues = _scan(Path(root), os.environ if env is None else env)
    if issues:
        raise_issues("project", Path(root), issues)
    return project


def project_state_url(root: str | os.PathLike[str],
                      env: Mapping[str, str] | None = None) -> str | None:
    """The ``state:`` URL of the project's ``crm2erp.yaml``, if it has one.

    ``${VAR}`` is expanded as in ``connections.yaml``; a problem in the file is a
    ConfigError naming its line and column."""
    from crm2erp.mapping.models import ProjectFile

    path = Path(root) / PROJECT_FILE
    if not path.is_file():
        return None
    doc = load_yaml(path)
    issues = list(doc.issues) + interpolate_env(doc, os.environ if env is None else env)
    parsed, more = validate_doc(doc, ProjectFile)
    if parsed is None or issues or more:
        raise_issues("project file", path, sorted_issues(issues + more))
    return parsed.state

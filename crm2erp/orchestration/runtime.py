"""Load a project inside a task, with credentials from Airflow Connections.

A connection in ``connections.yaml`` may say ``airflow_conn_id: my_crm``.
Inside an Airflow task the Airflow Connection of that id (host, login,
password, schema, port, extra JSON) is turned into the connector's settings
by the hook for its type (:mod:`crm2erp.orchestration.hooks`) and laid over
the YAML settings; ``${VAR}`` values it replaces need not be set on the
worker. Outside Airflow the key is ignored and the ``${VAR}`` values are used.
"""

from __future__ import annotations

__all__ = ["SettingsFetcher", "load_runtime_project", "resolve_connections", "flow_connections"]

import dataclasses
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from crm2erp.errors import ConfigError
from crm2erp.mapping import Project, load_connections, load_project
from crm2erp.mapping.loader import CONNECTIONS_FILE
from crm2erp.mapping.models import ConnectionSpec
from crm2erp.orchestration.projects import MarkingEnv, scan_projects, unset_variables

log = logging.getLogger(__name__)

# (airflow_conn_id, connector type, settings from the YAML) -> merged settings
SettingsFetcher = Callable[[str, str, dict[str, Any]], dict[str, Any]]


def _airflow_fetcher(conn_id: str, conn_type: str, settings: dict[str, Any]) -> dict[str, Any]:
    from crm2erp.orchestration.hooks import connector_settings

    return connector_settings(conn_id, conn_type, settings)


def _resolve(spec: ConnectionSpec, fetch: SettingsFetcher) -> ConnectionSpec:
    settings = dict(spec.settings)
    if spec.airflow_conn_id:
        settings = fetch(spec.airflow_conn_id, spec.type, settings)
    missing = sorted(set(unset_variables(settings)))
    if missing:
        where = f"{spec.source_file}:{spec.line}" if spec.line else str(spec.source_file)
        names = ", ".join(missing)
        hint = (f"the Airflow Connection {spec.airflow_conn_id!r} does not provide them"
                if spec.airflow_conn_id else
                "or give the connection an airflow_conn_id whose Airflow Connection holds them")
        raise ConfigError(f"connection {spec.name!r} ({where}) needs environment variable(s) "
                          f"{names}, which are not set on this worker; export them, {hint}")
    return dataclasses.replace(spec, settings=settings)


def resolve_connections(project: Project, names: Iterable[str],
                        fetch: SettingsFetcher | None = None) -> None:
    """Resolve the named connections of ``project`` in place (others are left alone,
    so a variable only another flow needs does not stop this one)."""
    fetch = fetch or _airflow_fetcher
    for name in dict.fromkeys(names):
        if name in project.connections:
            project.connections[name] = _resolve(project.connections[name], fetch)


def flow_connections(project: Project, flow_name: str) -> list[str]:
    """The connections a flow uses: source, target and write-back."""
    flow = project.flow(flow_name)
    names = [flow.source.connection, flow.target.connection]
    if flow.write_back is not None:
        names.append(flow.write_back.connection)
    return list(dict.fromkeys(names))


def load_runtime_project(root: str | Path, flow_name: str,
                         fetch: SettingsFetcher | None = None) -> Project:
    """Load the project at ``root`` for running ``flow_name``: every file is checked,
    and the flow's connections get their Airflow credentials.

    A problem in a file the flow does not use (another flow, its mappings) does
    not stop it, as it does not cost its DAG (see
    :func:`~crm2erp.orchestration.projects.scan_projects`): the project then
    holds the flows that load, and a warning lists the problems."""
    env = MarkingEnv.for_project(root)
    try:
        project = load_project(root, env=env)
    except ConfigError as exc:
        usable = scan_projects([Path(root)])
        if flow_name not in usable.flows:
            raise
        log.warning("flow %s runs although other files of its project have problems:\n%s",
                    flow_name, "\n".join(f"  {issue}" for issue in exc.issues))
        project = Project(Path(root).resolve(),
                          load_connections(Path(root) / CONNECTIONS_FILE, env),
                          {name: entry.flow for name, entry in usable.flows.items()})
    resolve_connections(project, flow_connections(project, flow_name), fetch)
    return project

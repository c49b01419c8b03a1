"""Check flows against their connectors' streams (``mappings validate`` only).

For every flow: the source and target streams exist; an inbound mapping's
``from:`` paths are fields of the source stream and an outbound mapping's
targets are fields of the target stream, when the connector knows its
stream's fields (declared in its settings, or reflected from a reachable
database); ``delete_policy`` is one the target stream can honour; the
write-back stream exists and has the field; the source's cursor can be read as
typed (a text column needs the flow's ``incremental: {type: ...}``). Connectors are built from the
settings (no I/O); only ``reflect`` lets a connector look at a live schema.
A system that cannot be reached is a note, not a problem.
"""

from __future__ import annotations

__all__ = ["check_streams"]

from collections.abc import Callable
from typing import Any

from crm2erp.contract import Connector
from crm2erp.errors import ConfigError, ConfigIssue, FatalError, RetriableError
from crm2erp.mapping.fieldcheck import system_field_problem
from crm2erp.mapping.files import Project
from crm2erp.mapping.models import FlowSpec, MappingSpec
from crm2erp.mapping.validation import did_you_mean
from crm2erp.registry import create_connector

_Get = Callable[[str], Connector | None]


def _discovered(conn: Connector) -> bool:
    """Streams found in the live system (no ``streams:`` in the settings)."""
    return getattr(conn.config, "streams", ()) is None


def _fields(flow: FlowSpec, path: tuple[str, ...], conn: Connector, conn_name: str,
            stream: str, reflect: bool, notes: dict[str, str]
            ) -> tuple[tuple[str, ...], list[ConfigIssue]]:
    """The stream's fields (empty: unknown) and the problems finding the stream.

    ``notes`` collects, per connection, why it could not be reached (then it is
    not tried again)."""
    if conn_name in notes or (_discovered(conn) and not reflect):
        return (), []
    try:
        conn.stream(stream)
        return conn.stream_fields(stream, reflect=reflect), []
    except ConfigError as exc:
        names = []
        try:
            names = [s.name for s in conn.streams()]
        except Exception:  # noqa: BLE001 - only for the hint
            pass
        hint = did_you_mean(stream, names) if stream not in names else ""
        return (), [flow.doc.issue(path + ("stream",), f"{exc}{hint}")]
    except (RetriableError, FatalError, OSError) as exc:
        notes[conn_name] = (f"connection {conn_name!r} not reached ({exc}): the mappings "
                            "were not checked against its tables' columns")
        return (), []


def _mapping_issues(spec: MappingSpec, fields: tuple[str, ...], what: str) -> list[ConfigIssue]:
    doc = spec.doc
    issues = []
    for target, field in spec.fields.items():
        if spec.direction == "outbound":
            problem = system_field_problem(target, fields, what)
            if problem:
                issues.append(doc.issue(("fields", target), problem, at="key"))
            continue
        sources = [field.from_] if isinstance(field.from_, str) else field.from_ or []
        for i, source in enumerate(sources):
            problem = system_field_problem(source, fields, what)
            if problem:
                where = ("fields", target, "from") + ((i,) if isinstance(field.from_, list)
                                                      else ())
                issues.append(doc.issue(where, f"'from': {problem}"))
    return issues


def _cursor_issues(flow: FlowSpec, conn: Connector, conn_name: str,
                   notes: dict[str, str]) -> list[ConfigIssue]:
    """A source cursor that cannot be read as typed (a text column, no ``type:``)."""
    if conn_name in notes:
        return []
    try:
        conn.check_cursor(flow.source.stream)
    except ConfigError as exc:
        where = ("incremental",) if flow.incremental is not None else ("source", "stream")
        return [flow.doc.issue(where, str(exc))]
    except (RetriableError, FatalError, OSError) as exc:
        notes[conn_name] = (f"connection {conn_name!r} not reached ({exc}): the mappings "
                            "were not checked against its tables' columns")
    return []


def _delete_issues(flow: FlowSpec, conn: Connector, conn_name: str) -> list[ConfigIssue]:
    policy = flow.delete_policy
    if policy == "ignore":
        return []
    if type(conn).delete is Connector.delete:
        return [flow.doc.issue(("delete_policy",), (
            f"delete_policy {policy!r}: connector {conn.name!r} (connection {conn_name!r}) "
            "cannot delete or archive records; use delete_policy: ignore"))]
    if _discovered(conn):
        return []
    try:
        modes = conn.stream(flow.target.stream).delete_modes
    except ConfigError:
        return []   # reported at target.stream
    if modes is None or policy in modes:
        return []
    if policy == "archive" and "delete" in modes:
        advice = (f"give the stream an 'archive:' setting in connections.yaml (see "
                  f"docs/connectors/{conn.name}.md), or use delete_policy: delete or ignore")
    else:
        advice = f"it can: {', '.join(modes) or 'nothing'}"
    return [flow.doc.issue(("delete_policy",), (
        f"delete_policy {policy!r}: stream {flow.target.stream!r} of connection "
        f"{conn_name!r} cannot {policy}; {advice}"))]


def _check_flow(project: Project, flow: FlowSpec, get: _Get, reflect: bool,
                notes: dict[str, str]) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    sides: list[tuple[tuple[str, ...], Any, Any]] = [
        (("source",), flow.source, flow.source_mapping_path),
        (("target",), flow.target, flow.target_mapping_path)]
    for path, endpoint, mapping_path in sides:
        conn = get(endpoint.connection)
        if conn is None:
            continue
        if path == ("source",) and flow.incremental is not None:
            conn.declare_cursor(endpoint.stream, flow.incremental.cursor_type)
        fields, more = _fields(flow, path, conn, endpoint.connection, endpoint.stream,
                               reflect, notes)
        issues += more
        if path == ("source",) and reflect and not more:
            issues += _cursor_issues(flow, conn, endpoint.connection, notes)
        spec = project._mappings.get(mapping_path)
        if fields and spec is not None and spec._doc is not None:
            what = f"stream {endpoint.connection}.{endpoint.stream}"
            issues += _mapping_issues(spec, fields, what)
    target = get(flow.target.connection)
    if target is not None:
        issues += _delete_issues(flow, target, flow.target.connection)
    back = flow.write_back
    conn = get(back.connection) if back is not None else None
    if back is not None and conn is not None:
        fields, more = _fields(flow, ("write_back",), conn, back.connection, back.stream,
                               reflect, notes)
        issues += more
        problem = system_field_problem(back.field, fields,
                                       f"stream {back.connection}.{back.stream}")
        if problem:
            issues.append(flow.doc.issue(("write_back", "field"), problem))
    return issues


def check_streams(project: Project, *, reflect: bool, notes: list[str]) -> list[ConfigIssue]:
    """Problems between the flows of ``project`` and their connectors' streams."""
    built: dict[str, Connector | None] = {}

    def get(name: str) -> Connector | None:
        if name not in built:
            spec = project.connections.get(name)
            try:
                built[name] = (None if spec is None else
                               create_connector(spec.type, dict(spec.settings)))
            except ConfigError:   # reported at its position by the settings check
                built[name] = None
        return built[name]

    issues: list[ConfigIssue] = []
    unreachable: dict[str, str] = {}
    try:
        for flow in project.flows.values():
            issues += _check_flow(project, flow, get, reflect, unreachable)
        notes.extend(unreachable.values())
    finally:
        for conn in built.values():
            if conn is not None:
                conn.close()
    return issues

"""Project-wide checks: the references between files.

Each file may be valid alone and the project still broken: a flow naming a
connection that does not exist, a mapping file that is missing or maps a
different entity, a ``depends_on`` naming no flow or going round in a
circle. Problems are reported at the referring value in the flow file.
"""

from __future__ import annotations

__all__ = ["check_flows"]

from pathlib import Path

from crm2erp.errors import ConfigIssue
from crm2erp.mapping.files import Project, read_mapping
from crm2erp.mapping.models import FlowSpec
from crm2erp.mapping.validation import did_you_mean


def _check_connections(flow: FlowSpec, known: list[str]) -> list[ConfigIssue]:
    issues = []
    refs = [(("source", "connection"), flow.source.connection),
            (("target", "connection"), flow.target.connection)]
    if flow.write_back is not None:
        refs.append((("write_back", "connection"), flow.write_back.connection))
    for path, name in refs:
        if name not in known:
            hint = did_you_mean(name, known) or (
                f"; known connections: {', '.join(known)}" if known else "")
            issues.append(flow.doc.issue(
                path, f"flow {flow.flow!r} uses unknown connection {name!r}{hint}"))
    return issues


def _check_mappings(project: Project, flow: FlowSpec, seen: dict[Path, list[ConfigIssue]]
                    ) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for side, path, direction in (("source", flow.source_mapping_path, "inbound"),
                                  ("target", flow.target_mapping_path, "outbound")):
        where = (side, "mapping")
        if not path.is_file():
            issues.append(flow.doc.issue(
                where, f"mapping file {path} not found (paths are relative to the flow file)"))
            continue
        if path not in seen:
            spec, seen[path] = read_mapping(path)
            issues += seen[path]
            if spec is not None:
                project._mappings[path] = spec
        spec = project._mappings.get(path)
        if spec is None:
            continue
        # a forecast flow reads opportunities and writes forecast lines
        expected = (flow.forecast.from_entity if side == "source" and flow.forecast
                    else flow.entity)
        if spec.entity != expected:
            what = (f"forecast flow {flow.flow!r} reads {expected!r} (forecast.from_entity)"
                    if expected != flow.entity else f"flow {flow.flow!r} syncs {expected!r}")
            issues.append(flow.doc.issue(
                where, f"mapping {spec.mapping!r} maps entity {spec.entity!r} but {what}"))
        if spec.direction != direction:
            issues.append(flow.doc.issue(
                where, f"the {side} mapping must be {direction}, but {spec.mapping!r} is "
                f"{spec.direction}"))
    return issues


def _check_depends(project: Project) -> list[ConfigIssue]:
    issues = []
    names = list(project.flows)
    for flow in project.flows.values():
        for i, parent in enumerate(flow.depends_on):
            if parent == flow.flow:
                issues.append(flow.doc.issue(("depends_on", i),
                                              f"flow {flow.flow!r} depends on itself"))
            elif parent not in project.flows:
                issues.append(flow.doc.issue(
                    ("depends_on", i),
                    f"flow {flow.flow!r} depends on unknown flow {parent!r}"
                    + did_you_mean(parent, names)))
    # cycles (self-dependencies are already reported)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    reported: set[frozenset[str]] = set()

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for parent in project.flows[name].depends_on:
            if parent == name or parent not in project.flows:
                continue
            if state.get(parent) == 1:
                cycle = stack[stack.index(parent):] + [name] if parent in stack else [name]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    flow = project.flows[name]
                    i = flow.depends_on.index(parent)
                    issues.append(flow.doc.issue(
                        ("depends_on", i),
                        "depends_on goes round in a circle: "
                        + " -> ".join(cycle + [parent])))
            elif parent not in state:
                visit(parent, stack + [name])
        state[name] = 2

    for name in sorted(project.flows):
        if name not in state:
            visit(name, [])
    return issues


def check_flows(project: Project, *, checked_connections: bool) -> list[ConfigIssue]:
    """All cross-reference problems of ``project`` plus those of its mapping files."""
    issues: list[ConfigIssue] = []
    known = sorted(project.connections)
    seen: dict[Path, list[ConfigIssue]] = {}
    for flow in project.flows.values():
        if checked_connections:
            issues += _check_connections(flow, known)
        issues += _check_mappings(project, flow, seen)
    issues += _check_depends(project)
    # mapping files no flow uses are still checked
    for path in sorted(project.root.rglob("*.map.yaml")):
        path = path.resolve()
        rel = path.relative_to(project.root).parts
        if path in seen or any(part.startswith(".") for part in rel):
            continue
        spec, seen[path] = read_mapping(path)
        issues += seen[path]
        if spec is not None:
            project._mappings[path] = spec
    return issues

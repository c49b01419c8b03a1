"""Read one mapping or flow file (its spec and every problem in it, with positions),
and the :class:`Project` they make up.

The loader (:mod:`crm2erp.mapping.loader`) builds projects from these; the
project-wide checks (:mod:`crm2erp.mapping.crossref`,
:mod:`crm2erp.mapping.streamcheck`) take a :class:`Project` and read the mapping
files the flows name with :func:`read_mapping`.
"""

from __future__ import annotations

__all__ = ["read_mapping", "read_flow", "sorted_issues", "raise_issues", "load_mapping",
           "Project"]

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from crm2erp.errors import ConfigError, ConfigIssue
from crm2erp.mapping.compiler import check_mapping
from crm2erp.mapping.models import ConnectionSpec, FlowSpec, MappingSpec
from crm2erp.mapping.registry import TransformSpecError, bind_transform
from crm2erp.mapping.validation import did_you_mean, validate_doc
from crm2erp.mapping.yamlpos import YamlDoc, load_yaml


def sorted_issues(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    unique = list(dict.fromkeys(issues))
    return sorted(unique, key=lambda i: (i.file, i.line or 0, i.column or 0))


def _raw_transform_issues(doc: YamlDoc) -> list[ConfigIssue]:
    """Check transform items even when the rest of the file is invalid."""
    issues: list[ConfigIssue] = []

    def walk(fields: Any, base: tuple[Any, ...]) -> None:
        if not isinstance(fields, Mapping):
            return
        for target, spec in fields.items():
            if not isinstance(spec, Mapping):
                continue
            items = spec.get("transforms")
            for i, item in enumerate(items if isinstance(items, list) else []):
                try:
                    bind_transform(item)
                except TransformSpecError as exc:
                    for sub, at, msg in exc.problems:
                        path = base + (target, "transforms", i) + sub
                        issues.append(doc.issue(path, msg, at=at))
            walk(spec.get("each"), base + (target, "each"))

    if isinstance(doc.data, Mapping):
        walk(doc.data.get("fields"), ("fields",))
    return issues


def read_mapping(path: Path) -> tuple[MappingSpec | None, list[ConfigIssue]]:
    """The spec (None when its structure is invalid) and every problem of the file."""
    doc = load_yaml(path)
    issues = list(doc.issues)
    spec, more = validate_doc(doc, MappingSpec)
    issues += more
    if spec is not None:
        spec._source_file = path.resolve()
        issues += check_mapping(spec)
    else:
        issues += _raw_transform_issues(doc)
    return spec, sorted_issues(issues)


def read_flow(path: Path) -> tuple[FlowSpec | None, list[ConfigIssue]]:
    doc = load_yaml(path)
    spec, more = validate_doc(doc, FlowSpec)
    issues = list(doc.issues) + more
    if spec is not None:
        spec._source_file = path.resolve()
    return (spec if not issues else None), sorted_issues(issues)


def raise_issues(kind: str, path: Path, issues: list[ConfigIssue]) -> NoReturn:
    noun = "problem" if len(issues) == 1 else "problems"
    raise ConfigError(f"{kind} {path} has {len(issues)} {noun}", issues)


def load_mapping(path: str | os.PathLike[str]) -> MappingSpec:
    """Parse and check one ``*.map.yaml`` (including transform arguments)."""
    spec, issues = read_mapping(Path(path))
    if spec is None or issues:
        raise_issues("mapping file", Path(path), issues)
    return spec


@dataclass
class Project:
    """A checked project directory: its connections, flows and mappings."""

    root: Path
    connections: dict[str, ConnectionSpec]
    flows: dict[str, FlowSpec]
    _mappings: dict[Path, MappingSpec] = field(default_factory=dict, repr=False, init=False)

    def mapping(self, path: str | os.PathLike[str]) -> MappingSpec:
        """The mapping at ``path`` (absolute, or relative to the project root), cached."""
        resolved = Path(path)
        if not resolved.is_absolute():
            resolved = self.root / resolved
        resolved = resolved.resolve()
        if resolved not in self._mappings:
            self._mappings[resolved] = load_mapping(resolved)
        return self._mappings[resolved]

    def flow(self, name: str) -> FlowSpec:
        try:
            return self.flows[name]
        except KeyError:
            hint = did_you_mean(name, list(self.flows))
            raise ConfigError(f"no flow named {name!r} in {self.root}{hint}") from None

    def ordered_flows(self) -> list[FlowSpec]:
        """All flows, every flow after the flows it depends on (then by name)."""
        done: dict[str, FlowSpec] = {}

        def visit(name: str) -> None:
            if name in done or name not in self.flows:
                return
            done[name] = None  # type: ignore[assignment]  # marks "in progress": cycles stop
            for parent in self.flows[name].depends_on:
                visit(parent)
            done.pop(name)
            done[name] = self.flows[name]

        for name in sorted(self.flows):
            visit(name)
        return list(done.values())

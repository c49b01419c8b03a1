"""Read one mapping or flow file: its spec and every problem in it, with positions.

The loader (:mod:`crm2erp.mapping.loader`) builds projects from these; the
cross-reference checks (:mod:`crm2erp.mapping.crossref`) read mapping files
the flows name with :func:`read_mapping`.
"""

from __future__ import annotations

__all__ = ["read_mapping", "read_flow", "sorted_issues"]

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crm2erp.errors import ConfigIssue
from crm2erp.mapping.compiler import check_mapping
from crm2erp.mapping.models import FlowSpec, MappingSpec
from crm2erp.mapping.registry import TransformSpecError, bind_transform
from crm2erp.mapping.validation import validate_doc
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

"""The configuration layer: mapping, flow and connection YAML files.

``load_project(dir)`` reads a whole project (``connections.yaml`` plus
``*.flow.yaml`` files naming ``*.map.yaml`` files); ``compile_mapping`` turns
a mapping into closures the engine applies to each record. Every problem in
the YAML is a :class:`crm2erp.errors.ConfigError` whose issues name
file:line:column; every problem with a record while mapping is a
:class:`crm2erp.errors.RecordError` naming the mapping, field and value.
"""

from __future__ import annotations

__all__ = [
    "CANONICAL_ENTITIES",
    "CompiledMapping",
    "Condition",
    "ConnectionSpec",
    "DictResolver",
    "FieldSpec",
    "FieldTrace",
    "FlowSpec",
    "MappingSpec",
    "Project",
    "Resolver",
    "TransformContext",
    "check_mapping",
    "compile_mapping",
    "export_json_schemas",
    "get_transform",
    "load_connections",
    "load_flow",
    "load_mapping",
    "load_project",
    "load_yaml",
    "transform",
    "transform_names",
    "validate_project",
]

from crm2erp.mapping.compiler import CompiledMapping, FieldTrace, check_mapping, compile_mapping
from crm2erp.mapping.jsonschema import export_json_schemas
from crm2erp.mapping.loader import (
    Project,
    load_connections,
    load_flow,
    load_mapping,
    load_project,
    validate_project,
)
from crm2erp.mapping.models import (
    CANONICAL_ENTITIES,
    Condition,
    ConnectionSpec,
    FieldSpec,
    FlowSpec,
    MappingSpec,
)
from crm2erp.mapping.resolver import DictResolver, Resolver
from crm2erp.mapping.transforms import TransformContext, get_transform, transform, transform_names
from crm2erp.mapping.yamlpos import load_yaml

"""A flow's checks: expectations derived from the canonical model plus its rules.

The canonical pydantic model already refuses malformed records, so the
schema-derived expectations (required fields, enum value sets, formats,
ranges, types) pass for every record that reached the quality stage while
costing most of the gate's time: they are only added with ``schema: true``,
to document the whole contract in the exported suite. The flow's rules are
what can fail: business requirements stricter than the model (a tax id for
customers, a postal code format per country...).
"""

from __future__ import annotations

__all__ = ["Check", "flow_checks", "schema_checks", "build_suite", "suite_json",
           "expectation_class", "rule_expectation", "gx_context", "quiet_gx_logging"]

import datetime as dt
import difflib
import enum
import functools
import importlib
import logging
import types
import typing
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import great_expectations as gx
import pycountry
from great_expectations.expectations.row_conditions import Column
from pydantic import BaseModel

from crm2erp.errors import ConfigError
from crm2erp.mapping.conditions import compile_condition
from crm2erp.quality.gx.config import PARENT_RULE, QualityConfig
from crm2erp.schemas import entity_model

_SKIP = {"id", "updated_at", "extensions"}
# str fields are left out: the model already guarantees them, and every
# expectation costs time on every batch
_TYPE_NAMES = {int: ["int"], float: ["float", "int"], bool: ["bool"],
               Decimal: ["Decimal", "int", "float"], dt.date: ["date"],
               dt.datetime: ["datetime", "Timestamp"]}
_FORMATS = {  # AfterValidator function name -> (expectation, kwargs)
    "_email": ("expect_column_values_to_match_regex", {"regex": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"}),
    "_phone": ("expect_column_values_to_match_regex", {"regex": r"^\+[1-9][0-9]{4,14}$"}),
    "_currency": ("expect_column_values_to_be_in_set",
                  lambda: {"value_set": sorted(c.alpha_3 for c in pycountry.currencies)}),
    "_country": ("expect_column_values_to_be_in_set",
                 lambda: {"value_set": sorted(c.alpha_2 for c in pycountry.countries)}),
}


@dataclass
class Check:
    """One rule ready to run: a GX expectation, or the parent check."""

    rule: str
    expectation: str
    column: str | None
    kwargs: dict[str, Any] = field(default_factory=dict)
    severity: str = "critical"
    mostly: float | None = None
    condition: Any = None            # a compiled predicate over the flat record
    origin: str = "flow"             # "schema" or "flow"
    parent_entity: str | None = None

    @property
    def when_column(self) -> str | None:
        if self.condition is None:
            return None
        return f"__when_{zlib.crc32(self.rule.encode()):08x}"  # a name pandas can query


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, optional?) of ``X | None``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        return (args[0] if len(args) == 1 else annotation), optional
    return annotation, False


def _metadata(info, inner: Any) -> tuple[Any, list[Any]]:
    """The base type and every constraint/validator, also those of ``Annotated`` inside
    a union (``Email | None``) and of nested ``Field(...)`` objects (``Money``)."""
    found = list(info.metadata)
    if typing.get_origin(inner) is typing.Annotated:
        inner, *extra = typing.get_args(inner)
        found += extra
    flat: list[Any] = []
    for meta in found:
        flat += [meta, *getattr(meta, "metadata", [])]
    return inner, flat


def _field_checks(model: type[BaseModel], prefix: str, required_parent: bool) -> list[Check]:
    checks: list[Check] = []
    for name, info in model.model_fields.items():
        if not prefix and name in _SKIP:
            continue
        column = prefix + name
        inner, optional = _unwrap(info.annotation)
        inner, metadata = _metadata(info, inner)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            checks += _field_checks(inner, column + ".", required_parent and not optional)
            continue
        if typing.get_origin(inner) in (list, dict):
            continue
        never_null = info.is_required() or (not optional and info.default is not None)
        if never_null and required_parent:
            checks.append(Check(f"schema: {column} required",
                                "expect_column_values_to_not_be_null", column, origin="schema"))
        if isinstance(inner, type) and issubclass(inner, enum.Enum):
            checks.append(Check(f"schema: {column} in {inner.__name__}",
                                "expect_column_values_to_be_in_set", column,
                                {"value_set": [m.value for m in inner]}, origin="schema"))
            continue
        low = high = None
        for meta in metadata:
            func = getattr(getattr(meta, "func", None), "__name__", "")
            if func in _FORMATS:
                expectation, kwargs = _FORMATS[func]
                checks.append(Check(f"schema: {column} format", expectation, column,
                                    dict(kwargs() if callable(kwargs) else kwargs),
                                    origin="schema"))
            low = getattr(meta, "ge", None) if getattr(meta, "ge", None) is not None else low
            high = getattr(meta, "le", None) if getattr(meta, "le", None) is not None else high
            if getattr(meta, "min_length", None):
                checks.append(Check(f"schema: {column} not blank",
                                    "expect_column_value_lengths_to_be_between", column,
                                    {"min_value": meta.min_length}, origin="schema"))
        if low is not None or high is not None:
            checks.append(Check(f"schema: {column} range", "expect_column_values_to_be_between",
                                column, {"min_value": low, "max_value": high}, origin="schema"))
        if inner in _TYPE_NAMES:
            checks.append(Check(f"schema: {column} type", "expect_column_values_to_be_in_type_list",
                                column, {"type_list": _TYPE_NAMES[inner]}, origin="schema"))
    return checks


def schema_checks(entity: str) -> list[Check]:
    """The expectations the canonical model of ``entity`` implies."""
    return _field_checks(entity_model(entity), "", True)


def flow_checks(flow) -> list[Check]:
    """Every check of a flow: the schema's (with ``schema: true``), then its rules."""
    config: QualityConfig = flow.quality or QualityConfig()
    checks = schema_checks(flow.entity) if config.schema_ else []
    model = entity_model(flow.entity)
    for rule in config.rules:
        check = Check(rule.label, rule.expectation, rule.column, dict(rule.kwargs),
                      rule.severity, rule.mostly,
                      None if rule.condition is None else compile_condition(rule.condition))
        if rule.expectation == PARENT_RULE:
            if rule.column not in model.parents:
                known = ", ".join(model.parents) or "none"
                raise ConfigError(f"flow {flow.flow!r}: rule {rule.label!r} checks a parent, "
                                  f"but {flow.entity} has no parent field {rule.column!r} "
                                  f"(parent fields: {known})")
            check.parent_entity = model.parents[rule.column]
        checks.append(check)
    return checks


def _custom_expectation(name: str) -> type:
    """The expectation class ``module:Class`` of the user's own package (a GX
    custom expectation: a subclass of ``gx.expectations.Expectation``)."""
    module_name, _, class_name = name.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        raise ConfigError(f"custom expectation {name!r}: module {module_name!r} cannot be "
                          f"imported ({exc}); install the package that holds it") from None
    except AttributeError:
        raise ConfigError(f"custom expectation {name!r}: module {module_name!r} has no "
                          f"{class_name!r}") from None
    if not (isinstance(found, type) and issubclass(found, gx.expectations.Expectation)):
        raise ConfigError(f"custom expectation {name!r} is not a Great Expectations "
                          "Expectation class")
    return found


def expectation_class(name: str) -> type:
    """The GX expectation class of a snake_case expectation name, or of a custom
    expectation named ``module:Class``."""
    if ":" in name:
        return _custom_expectation(name)
    class_name = "".join(part.capitalize() for part in name.split("_"))
    found = getattr(gx.expectations, class_name, None)
    if found is None:
        known = [n for n in dir(gx.expectations) if n.startswith("Expect")]
        close = difflib.get_close_matches(class_name, known, n=1)
        hint = ""
        if close:
            snake = "".join("_" + c.lower() if c.isupper() else c for c in close[0]).lstrip("_")
            hint = f"; did you mean {snake!r}?"
        raise ConfigError(f"unknown Great Expectations expectation {name!r}{hint}")
    return found


def rule_expectation(check: Check, flow_name: str):
    """The GX expectation of one check; a ConfigError naming the flow and rule when GX
    rejects it (an unknown expectation, wrong arguments)."""
    kwargs = dict(check.kwargs)
    if check.column is not None:
        kwargs["column"] = check.column
    if check.mostly is not None:
        kwargs["mostly"] = check.mostly
    if check.when_column is not None:
        kwargs["row_condition"] = Column(check.when_column) == True  # noqa: E712
    meta = {"rule": check.rule, "severity": check.severity, "origin": check.origin}
    try:
        return expectation_class(check.expectation)(**kwargs, meta=meta)
    except ConfigError as exc:
        raise ConfigError(f"flow {flow_name!r}: rule {check.rule!r}: {exc}") from None
    except Exception as exc:  # GX validates its arguments with pydantic
        raise ConfigError(f"flow {flow_name!r}: rule {check.rule!r} "
                          f"({check.expectation}) has wrong arguments: {exc}") from None


#: GX's loggers; one of them sets itself to INFO when GX is imported
GX_LOGGERS = ("great_expectations", "great_expectations.data_context.types.base")


def quiet_gx_logging() -> None:
    """GX logs at WARNING unless the application logs INFO (``crm2erp -v``): its INFO
    lines ("Created temporary directory ... for ephemeral docs site") are noise."""
    verbose = logging.getLogger().getEffectiveLevel() <= logging.INFO
    for name in GX_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)


@functools.lru_cache(maxsize=1)
def gx_context():
    """The process-wide ephemeral GX context, with one pandas dataframe asset; GX's
    logs at WARNING and no progress bars."""
    quiet_gx_logging()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    asset = context.data_sources.add_pandas("crm2erp").add_dataframe_asset("batch")
    asset.add_batch_definition_whole_dataframe("batch")
    return context


def build_suite(flow, checks: list[Check] | None = None) -> gx.ExpectationSuite:
    """The flow's GX suite (``parent_exists`` rules are crm2erp's own and not in it)."""
    checks = flow_checks(flow) if checks is None else checks
    gx_context()  # GX wants a context before a suite can take expectations
    suite = gx.ExpectationSuite(name=f"crm2erp.{flow.flow}",
                                meta={"flow": flow.flow, "entity": flow.entity})
    for check in checks:
        if check.expectation != PARENT_RULE:
            suite.add_expectation(rule_expectation(check, flow.flow))
    return suite


def suite_json(flow) -> dict[str, Any]:
    """The suite as GX JSON, with the parent rules listed in its meta."""
    checks = flow_checks(flow)
    data = build_suite(flow, checks).to_json_dict()
    parents = [{"rule": c.rule, "column": c.column, "severity": c.severity,
                "parent_entity": c.parent_entity} for c in checks
               if c.expectation == PARENT_RULE]
    if parents:
        data.setdefault("meta", {})["crm2erp_parent_rules"] = parents
    return data

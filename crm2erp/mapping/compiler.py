"""Compile a :class:`MappingSpec` once into closures, then apply it per record.

Each target field becomes a :class:`_Field`: a getter for its source path(s),
the bound transforms (definition + validated args), an optional ``when``
predicate and a setter for its dotted target. :meth:`CompiledMapping.apply`
runs them in file order; :meth:`CompiledMapping.explain` runs the very same
closures while recording every step, for ``crm2erp mappings explain``.

Failures inside a transform become :class:`RecordError` naming the mapping,
the field and the value - never a traceback in the dead letters - except
:class:`ParentMissingError`, which passes through so the engine can park the
record until its parent arrives.

A ``from:`` path the record does not have at all (as opposed to a null value)
leaves its target unset, like a ``when`` that does not match: a misspelt or
vanished source field never turns into nulls over good data. The compiled
mapping counts such paths; :meth:`CompiledMapping.absent_sources` names those
no record had, for the run's warnings.
"""

from __future__ import annotations

__all__ = ["compile_mapping", "check_mapping", "CompiledMapping", "FieldTrace"]

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from crm2erp.errors import ConfigError, ConfigIssue, ParentMissingError, RecordError
from crm2erp.mapping import transforms as _builtins  # noqa: F401  (registers built-ins)
from crm2erp.mapping.conditions import Predicate, compile_condition
from crm2erp.mapping.models import FieldSpec, MappingSpec
from crm2erp.mapping.paths import ABSENT, make_getter, make_setter
from crm2erp.mapping.registry import (
    Args,
    TransformContext,
    TransformFn,
    TransformSpecError,
    bind_transform,
)
from crm2erp.mapping.resolver import Resolver
from crm2erp.mapping.yamlpos import format_path


@dataclass
class FieldTrace:
    """What happened to one target field of one record (for ``explain``)."""

    target: str
    sources: list[str]
    raw: Any = None
    steps: list[tuple[str, Any]] = field(default_factory=list)
    value: Any = None
    error: str | None = None
    skipped: bool = False  # its `when` did not match
    absent: bool = False  # the record has no field named by `from`: not set
    children: list[list[FieldTrace]] | None = None  # per element, for `each`


@dataclass
class _Env:
    mapping: str
    system: str
    direction: str
    resolver: Resolver | None
    prefix: str = ""  # "lines[2]." inside `each`
    presence: dict[str, bool] | None = None  # source path -> found in some record
    _context: TransformContext | None = None

    def context(self, source: Mapping[str, Any], root: Mapping[str, Any],
                out: dict[str, Any], target: str) -> TransformContext:
        """The transforms' context for one field: one object per record, reused."""
        ctx = self._context
        if ctx is None or ctx.source is not source or ctx.output is not out:
            ctx = self._context = TransformContext(
                source, root, out, self.resolver, self.system, self.direction, self.mapping,
                target)
        else:
            ctx.field = target
        return ctx


@dataclass(slots=True)
class _Field:
    target: str
    sources: list[str]
    get: Callable[[Mapping[str, Any]], Any]
    put: Callable[[dict[str, Any], Any], None]
    steps: list[tuple[str, TransformFn, Args, bool]]   # label, fn, args, null-safe
    when: Predicate | None
    default: Any
    has_default: bool
    required: bool
    each: list[_Field] | None
    labels: list[str]  # the source paths as reported ("lines[].sku" inside `each`)
    multi: bool  # `from` is a list: the getter gives one value per path
    # what `get` and `put` do, inlined in `run` for a plain (undotted) key: the source
    # key read from a dict record (None: call `get`) and the output key (None: `put`)
    key: str | None = None
    slot: str | None = None

    def _fail(self, env: _Env, message: str) -> RecordError:
        name = env.prefix + self.target
        return RecordError(f"mapping {env.mapping!r}, field {name!r}: {message}", field=name)

    def run(
        self,
        source: Mapping[str, Any],
        root: Mapping[str, Any],
        out: dict[str, Any],
        env: _Env,
        trace: FieldTrace | None,
    ) -> None:
        # the hot path of every sync: one call per field and record, so the common
        # case (one plain `from`, no `each`, no trace) calls nothing but its transforms
        if self.when is not None and not self.when(source):
            if trace is not None:
                trace.skipped = True
            return
        if self.multi:
            value, absent = self._read_many(source, env)
        else:
            key = self.key
            value = (source.get(key, ABSENT) if key is not None and type(source) is dict
                     else self.get(source))
            absent = value is ABSENT
            presence = env.presence
            if presence is not None and self.labels and not presence.get(self.labels[0]):
                presence[self.labels[0]] = not absent
        if absent:   # not in the record at all: leave the target alone, as `when` does
            if trace is not None:
                trace.absent = True
            if self.required:
                raise self._fail(env, f"is required, but the record has no field "
                                      f"{' or '.join(map(repr, self.sources))}")
            return
        if trace is not None:
            trace.raw = value
        if self.each is not None:
            value = self._run_each(value, root, env, trace)
        if self.steps:
            value = self._transformed(value, source, root, out, env, trace)
        if value is None:
            if self.has_default:
                value = copy.deepcopy(self.default)
            if value is None and self.required:
                raise self._fail(env, "is required but has no value")
        if trace is not None:
            trace.value = value
        if self.slot is not None:
            out[self.slot] = value
        else:
            self.put(out, value)

    def _transformed(self, value: Any, source: Mapping[str, Any], root: Mapping[str, Any],
                     out: dict[str, Any], env: _Env, trace: FieldTrace | None) -> Any:
        """``value`` through the field's transforms, each step recorded in ``trace``."""
        ctx = env.context(source, root, out, env.prefix + self.target)
        for label, fn, args, null_safe in self.steps:
            if value is None and null_safe:   # null-safe transforms: None in, None out
                if trace is not None:
                    trace.steps.append((label, value))
                continue
            try:
                value = fn(value, args, ctx)
            except ParentMissingError as exc:   # the engine parks the record: passed on
                if exc.field is None:
                    exc.field = env.prefix + self.target
                raise
            except Exception as exc:  # a bad record must never crash the run
                # raised as made, never held in a local: a frame holding the exception
                # its traceback holds would be a cycle, freed only by the collector
                raise self._step_error(env, label, value, exc) from exc
            if trace is not None:
                trace.steps.append((label, value))
        return value

    def _step_error(self, env: _Env, label: str, value: Any, exc: Exception) -> RecordError:
        """What a transform's exception becomes: a RecordError naming the mapping and
        the field."""
        if isinstance(exc, RecordError):
            return self._fail(env, str(exc))
        if isinstance(exc, ValueError | TypeError | ArithmeticError | LookupError):
            return self._fail(env, str(exc) or f"transform {label!r} failed")
        return self._fail(env, f"transform {label!r} failed on {value!r}: "
                               f"{type(exc).__name__}: {exc}")

    def _read_many(self, source: Mapping[str, Any], env: _Env) -> tuple[Any, bool]:
        """The values of a `from:` list and whether the record lacks every field it names."""
        values = self.get(source)
        found = [v is not ABSENT for v in values]
        if env.presence is not None:
            for label, present in zip(self.labels, found, strict=False):
                env.presence[label] = env.presence.get(label, False) or present
        if all(found):
            return values, False
        if not any(found):
            return None, True
        return [None if v is ABSENT else v for v in values], False

    def _run_each(
        self, value: Any, root: Mapping[str, Any], env: _Env, trace: FieldTrace | None
    ) -> list[dict[str, Any]] | None:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise self._fail(env, f"'each' needs a list, got {type(value).__name__}")
        result = []
        children: list[list[FieldTrace]] | None = None
        if trace is not None:
            children = trace.children = []
        for i, element in enumerate(value):
            if not isinstance(element, Mapping):
                raise self._fail(env, f"element {i} is a {type(element).__name__}, not a record")
            child_out: dict[str, Any] = {}
            child_env = replace(env, prefix=f"{env.prefix}{self.target}[{i}].")
            child_traces = _run_fields(self.each or [], element, root, child_out, child_env,
                                       trace is not None)
            if children is not None:
                children.append(child_traces or [])
            result.append(child_out)
        return result


def _run_fields(
    fields: list[_Field],
    source: Mapping[str, Any],
    root: Mapping[str, Any],
    out: dict[str, Any],
    env: _Env,
    tracing: bool,
) -> list[FieldTrace] | None:
    if not tracing:
        for f in fields:
            f.run(source, root, out, env, None)
        return None
    traces = []
    for f in fields:
        trace = FieldTrace(f.target, list(f.sources))
        try:
            f.run(source, root, out, env, trace)
        except RecordError as exc:
            trace.error = str(exc)
        traces.append(trace)
    return traces


class CompiledMapping:
    """A mapping ready to run; build with :func:`compile_mapping`."""

    def __init__(self, spec: MappingSpec, system: str, fields: list[_Field],
                 where: Predicate | None):
        self.spec = spec
        self.name = spec.mapping
        self.entity = spec.entity
        self.direction = spec.direction
        self.system = system
        self._fields = fields
        self._where = where
        self._presence: dict[str, bool] = {}

    def sources(self) -> dict[str, list[str]]:
        """Target path -> the source paths it is computed from (for field ownership)."""
        return {f.target: list(f.sources) for f in self._fields}

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether the mapping-level ``where:`` lets ``record`` through."""
        return self._where is None or self._where(record)

    def apply(self, record: Mapping[str, Any], resolver: Resolver | None = None) -> dict[str, Any]:
        """Map one record; raises RecordError (or ParentMissingError).

        A field whose ``from:`` names no field of the record (not even a null one)
        is not set at all, so merging into what the hub knows keeps that value.
        """
        out: dict[str, Any] = {}
        env = _Env(self.name, self.system, self.direction, resolver, presence=self._presence)
        _run_fields(self._fields, record, record, out, env, False)
        return out

    def absent_sources(self) -> list[str]:
        """The ``from:`` paths that no record mapped since the last call had (a typo, or
        a source that stopped sending the field); starts counting afresh."""
        absent = sorted(path for path, seen in self._presence.items() if not seen)
        self._presence.clear()
        return absent

    def explain(
        self, record: Mapping[str, Any], resolver: Resolver | None = None
    ) -> list[FieldTrace]:
        """Map one record recording every step; errors are kept, not raised."""
        env = _Env(self.name, self.system, self.direction, resolver)
        return _run_fields(self._fields, record, record, {}, env, True) or []


def _label(item: Any) -> str:
    return item if isinstance(item, str) else str(next(iter(item)))


Getter = Callable[[Mapping[str, Any]], Any]


def _constant(value: Any) -> Getter:
    """A getter of a ``value:`` constant (a fresh copy of a dict or list each time)."""
    if isinstance(value, dict | list):
        return lambda record: copy.deepcopy(value)
    return lambda record: value


def _all_of(getters: list[Getter]) -> Getter:
    """A getter of the list of several ``from:`` paths."""
    return lambda record: [get(record) for get in getters]


def _compile_fields(
    fields: dict[str, FieldSpec], base: tuple[Any, ...], problems: list[tuple[tuple, str, str]],
    label: str = "",
) -> list[_Field]:
    targets = list(fields)
    for t in targets:
        for other in targets:
            if other.startswith(t + "."):
                problems.append((base + (other,), "key",
                                 f"target {other!r} is inside target {t!r}; keep only one"))
    compiled = []
    for target, spec in fields.items():
        path = base + (target,)
        steps = []
        for i, item in enumerate(spec.transforms):
            try:
                tdef, args = bind_transform(item)
            except TransformSpecError as exc:
                for sub, at, msg in exc.problems:
                    problems.append((path + ("transforms", i) + sub, at, msg))
                continue
            steps.append((_label(item), tdef.fn, args, tdef.null_safe))
        get: Getter
        if spec.from_ is None:
            get = _constant(spec.value)
        elif isinstance(spec.from_, str):
            get = make_getter(spec.from_)
        else:
            get = _all_of([make_getter(s) for s in spec.from_])
        each = (_compile_fields(spec.each, path + ("each",), problems,
                                f"{label}{spec.from_}[].") if spec.each else None)
        compiled.append(_Field(
            target=target, sources=spec.sources, get=get, put=make_setter(target),
            steps=steps, when=compile_condition(spec.when) if spec.when else None,
            default=spec.default, has_default=spec.has_default, required=spec.required,
            each=each, labels=[label + s for s in spec.sources],
            multi=isinstance(spec.from_, list),
            key=spec.from_ if isinstance(spec.from_, str) and "." not in spec.from_ else None,
            slot=target if "." not in target else None,
        ))
    return compiled


def _issues(spec: MappingSpec, problems: list[tuple[tuple, str, str]]) -> list[ConfigIssue]:
    doc = spec._doc
    file = str(spec.source_file) if spec.source_file else f"mapping {spec.mapping!r}"
    out = []
    for path, at, msg in problems:
        if doc is not None:
            out.append(doc.issue(path, msg, at=at))
        else:
            out.append(ConfigIssue(file, None, None, f"{format_path(path)}: {msg}"))
    return out


def check_mapping(spec: MappingSpec) -> list[ConfigIssue]:
    """Every problem compiling ``spec`` would find (empty list: it compiles), and every
    canonical field it names that the canonical model does not have."""
    from crm2erp.mapping.fieldcheck import canonical_problems

    problems: list[tuple[tuple, str, str]] = []
    _compile_fields(spec.fields, ("fields",), problems)
    problems += canonical_problems(spec)
    return _issues(spec, problems)


def compile_mapping(spec: MappingSpec, *, system: str) -> CompiledMapping:
    """Compile ``spec`` for the connection/system ``system`` (used by ``xref``).

    Raises ConfigError listing every unknown transform and bad argument.
    """
    problems: list[tuple[tuple, str, str]] = []
    fields = _compile_fields(spec.fields, ("fields",), problems)
    if problems:
        raise ConfigError(f"mapping {spec.mapping!r} does not compile",
                          _issues(spec, problems))
    where = compile_condition(spec.where) if spec.where else None
    return CompiledMapping(spec, system, fields, where)

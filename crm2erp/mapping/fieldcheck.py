"""Check the field paths of a mapping against the records they name.

The canonical side of every mapping is known offline: an inbound mapping's
targets and an outbound mapping's ``from:`` paths must be fields of the
canonical model (``schemas/``). Only ``extensions`` (and any other open
dict) takes any key. The system side is checked when its connector declares
the stream's fields (see :func:`system_field_problem`).

Problems come back as ``(data path, "key" | "value", message)`` so the caller
can place them at file:line:column.
"""

from __future__ import annotations

__all__ = ["canonical_problems", "canonical_path_problem", "system_field_problem"]

import inspect
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from crm2erp.mapping.models import FieldSpec, MappingSpec
from crm2erp.mapping.validation import _candidates, did_you_mean
from crm2erp.schemas import entity_model

Problem = tuple[tuple[Any, ...], str, str]
_OPEN = object()   # a place that takes any key (extensions, Any)


def _step(tp: Any, part: str) -> tuple[Any, list[type[BaseModel]]]:
    """The type one step down ``part`` from ``tp`` (None if there is none) and the
    models that were looked in."""
    models = []
    for cand in _candidates(tp):
        if cand is Any or cand is _OPEN:
            return _OPEN, []
        origin = typing.get_origin(cand)
        if origin is dict or cand is dict:
            return _OPEN, []
        if origin is list and part.lstrip("-").isdigit():
            return typing.get_args(cand)[0], []
        if inspect.isclass(cand) and issubclass(cand, BaseModel):
            models.append(cand)
            for name, info in cand.model_fields.items():
                if part in (name, info.alias):
                    return info.annotation, []
    return None, models


def _type_at(model: type[BaseModel], path: str) -> tuple[Any, str | None]:
    """The type at dotted ``path`` of ``model``, or (None, why it has none).

    ``why`` continues a sentence such as "unknown canonical field 'x' of Account".
    """
    tp: Any = model
    done: list[str] = []
    for part in path.split("."):
        nxt, models = _step(tp, part)
        if nxt is None:
            if not models:
                return None, f": {'.'.join(done)!r} is a value, it has no fields"
            names = [n for m in models for n in m.model_fields]
            hint = did_you_mean(part, names) or f" (fields: {', '.join(names)})"
            if not done:
                return None, hint
            return None, f": {models[0].__name__} has no field {part!r}{hint}"
        if nxt is _OPEN:
            return _OPEN, None
        tp = nxt
        done.append(part)
    return tp, None


def _list_item(tp: Any) -> type[BaseModel] | None:
    for cand in _candidates(tp):
        if typing.get_origin(cand) is list:
            item = typing.get_args(cand)[0]
            if inspect.isclass(item) and issubclass(item, BaseModel):
                return item
    return None


def canonical_path_problem(model: type[BaseModel], path: str) -> str | None:
    """Why ``path`` is not a field of ``model`` (None when it is)."""
    why = _type_at(model, path)[1]
    return None if why is None else f"unknown field {path!r} of {model.__name__}{why}"


def _sources(spec: FieldSpec, base: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(spec.from_, str):
        yield base + ("from",), spec.from_
    elif isinstance(spec.from_, list):
        for i, source in enumerate(spec.from_):
            yield base + ("from", i), source


def _fields(fields: dict[str, FieldSpec], model: Any, base: tuple[Any, ...],
            direction: str, entity: str, problems: list[Problem]) -> None:
    for target, spec in fields.items():
        path = base + (target,)
        if direction == "inbound":
            tp, why = _type_at(model, target)
            if why:
                if why.startswith(" (fields:"):
                    why = why[:-1] + "; fields without a canonical home go under extensions.)"
                problems.append((path, "key", f"unknown canonical field {target!r} of "
                                 f"{entity}{why}"))
                continue
            child_model = tp if spec.each is None else _list_item(tp)
            if spec.each is not None and child_model is None and tp is not _OPEN:
                problems.append((path, "key", f"{target!r} of {entity} is not a list of "
                                 "records, so it cannot take 'each'"))
                continue
        else:
            child_model = None
            for where, source in _sources(spec, path):
                tp, why = _type_at(model, source)
                if why:
                    problems.append((where, "value", f"'from' names unknown canonical field "
                                     f"{source!r} of {entity}{why}"))
                elif spec.each is not None:
                    child_model = _list_item(tp) or (_OPEN if tp is _OPEN else None)
        if spec.each is not None and child_model is not None:
            if child_model is _OPEN:
                continue
            _fields(spec.each, child_model, path + ("each",), direction,
                    child_model.__name__, problems)


def canonical_problems(spec: MappingSpec) -> list[Problem]:
    """Inbound targets and outbound ``from:`` paths that are not canonical fields."""
    problems: list[Problem] = []
    _fields(spec.fields, entity_model(spec.entity), ("fields",), spec.direction,
            spec.entity, problems)
    return problems


def system_field_problem(path: str, fields: tuple[str, ...], what: str) -> str | None:
    """Why ``path`` is not among a stream's declared ``fields`` (None when it may be).

    Only the first step of a dotted path is checked: the connector declares its
    records' top-level fields, not what is nested in them.
    """
    if not fields or path in fields or path.split(".")[0] in fields:
        return None
    first = path.split(".")[0]
    return (f"{what} has no field {first!r}"
            + (did_you_mean(first, list(fields)) or f" (fields: {', '.join(fields)})"))

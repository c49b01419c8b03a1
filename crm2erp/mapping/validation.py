"""Turn a pydantic ``ValidationError`` into positioned :class:`ConfigIssue` s.

An unknown key is reported at the key, with a did-you-mean from the keys the
model at that place allows; every other problem at the value. Several union
branches failing at one place (``from`` is neither a string nor a list)
become one issue.
"""

from __future__ import annotations

__all__ = ["issues_from_validation", "did_you_mean", "validate_doc"]

import difflib
import inspect
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

from pydantic import BaseModel, ValidationError

from crm2erp.errors import ConfigIssue
from crm2erp.mapping.yamlpos import DataPath, YamlDoc, format_path

M = TypeVar("M", bound=BaseModel)


def did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _candidates(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _candidates(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [c for arg in typing.get_args(tp) for c in _candidates(arg)]
    return [tp]


def _tagged(cand: Any, tag: Any) -> bool:
    """Whether ``tag`` is the discriminator value of model ``cand`` (``type: offset``)."""
    field = cand.model_fields.get("type")
    return field is not None and typing.get_origin(field.annotation) is typing.Literal \
        and tag in typing.get_args(field.annotation)


def _step(tp: Any, part: Any) -> Any:
    members = [c for c in _candidates(tp) if inspect.isclass(c) and issubclass(c, BaseModel)]
    if len(members) > 1:   # a discriminated union's tag in the location picks its member
        for cand in members:
            if _tagged(cand, part):
                return cand
    for cand in _candidates(tp):
        if inspect.isclass(cand) and issubclass(cand, BaseModel):
            for name, info in cand.model_fields.items():
                if (info.alias or name) == part:
                    return info.annotation
        origin = typing.get_origin(cand)
        if origin is dict and not isinstance(part, int):
            return typing.get_args(cand)[1]
        if origin is list and isinstance(part, int):
            return typing.get_args(cand)[0]
    for cand in _candidates(tp):  # a union tag: the class name or a Literal discriminator
        if inspect.isclass(cand) and issubclass(cand, BaseModel) and (
                cand.__name__ == part or any(
                    typing.get_origin(info.annotation) is Literal
                    and part in typing.get_args(info.annotation)
                    for info in cand.model_fields.values())):
            return cand
    return tp  # a model name pydantic added: stay where we are


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    tp: Any = model
    for part in loc:
        tp = _step(tp, part)
    for cand in _candidates(tp):
        if inspect.isclass(cand) and issubclass(cand, BaseModel):
            return [info.alias or name for name, info in cand.model_fields.items()]
    return []


def _message(err: Mapping[str, Any], model: type[BaseModel], where: str) -> tuple[str, str]:
    """``(at, message)`` for one pydantic error."""
    kind, loc = err["type"], tuple(err["loc"])
    if kind == "extra_forbidden":
        key = loc[-1]
        allowed = _allowed_keys(model, loc[:-1])
        hint = did_you_mean(str(key), allowed) or (
            f"; allowed keys: {', '.join(allowed)}" if allowed else "")
        return "key", f"unknown key {key!r} in {where}{hint}"
    if kind == "missing":
        return "value", f"{where}: missing required key {loc[-1]!r}"
    msg = err["msg"].removeprefix("Value error, ").replace("Input should be ", "expected ")
    if kind == "literal_error" and isinstance(err.get("input"), str):
        options = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
        msg += did_you_mean(err["input"], options)
    return "value", f"{where}: {msg}"


def issues_from_validation(
    exc: ValidationError, doc: YamlDoc, model: type[BaseModel], prefix: DataPath = (),
    *, skip_missing: bool = False,
) -> list[ConfigIssue]:
    """One issue per place; ``prefix`` is where the validated data sits in ``doc``.

    ``skip_missing`` leaves out missing required keys (settings another source
    provides, such as an Airflow Connection's credentials)."""
    grouped: dict[tuple[DataPath, str], list[str]] = {}
    for err in exc.errors():
        if skip_missing and err["type"] == "missing":
            continue
        path = doc.data_path(prefix + tuple(err["loc"]))
        if err["type"] == "extra_forbidden":  # the path ends with the unknown key
            where = format_path(path[:-1]) if path[:-1] else "the file"
        else:
            where = format_path(path)
        at, msg = _message(err, model, where)
        bucket = grouped.setdefault((path, at), [])
        if msg not in bucket:
            bucket.append(msg)
    issues = []
    for (path, at), messages in grouped.items():
        if len(messages) > 1:  # several union branches failed at the same place
            where = format_path(path)
            parts = [m.removeprefix(f"{where}: ") for m in messages]
            text = f"{where}: " + " or ".join(parts)
        else:
            text = messages[0]
        issues.append(doc.issue(path, text, at=at))
    return issues


def validate_doc(doc: YamlDoc, model: type[M]) -> tuple[M | None, list[ConfigIssue]]:
    """Validate ``doc.data`` against ``model``; the instance or the issues."""
    if doc.data is None and not doc.issues:
        return None, [doc.issue((), "the file is empty")]
    if not isinstance(doc.data, dict):
        if doc.data is None:
            return None, []
        return None, [doc.issue((), f"expected a mapping at the top of the file, "
                                    f"got {type(doc.data).__name__}")]
    try:
        instance = model.model_validate(doc.data)
    except ValidationError as exc:
        return None, issues_from_validation(exc, doc, model)
    instance._doc = doc  # type: ignore[attr-defined]
    return instance, []

"""Conditions (``where:``, ``when:``): the :class:`Condition` model and its compiler.

:func:`compile_condition` turns a :class:`Condition` tree into a predicate.

Values compare equal when they are ``==`` or, failing that, when their text
is equal - a CSV ``"5"`` matches ``equals: 5``. Null means None or a blank
string.
"""

from __future__ import annotations

__all__ = ["Condition", "compile_condition", "Predicate"]

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from crm2erp.mapping.paths import make_getter


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


_OPERATORS = ("equals", "not_equals", "in", "not_in", "is_null", "not_null", "matches")


def _check_regex(pattern: str | None) -> str | None:
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
    return pattern


class Condition(_Strict):
    """``{field, <operator>}`` or ``{all: [...]}`` / ``{any: [...]}`` / ``{not: {...}}``.

    Null means None or a blank string (CSV files have no other way to say it).
    """

    field: str | None = None
    equals: Any = None
    not_equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    is_null: Literal[True] | None = None
    not_null: Literal[True] | None = None
    matches: Annotated[str | None, AfterValidator(_check_regex)] = None
    all_: list[Condition] | None = Field(default=None, alias="all")
    any_: list[Condition] | None = Field(default=None, alias="any")
    not_: Condition | None = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        given = self.model_fields_set
        ops = [op for op in _OPERATORS if (op + "_" if op == "in" else op) in given]
        groups = [g for g in ("all", "any", "not") if g + "_" in given]
        if groups:
            if len(groups) > 1 or "field" in given or ops:
                raise ValueError(
                    "a condition is either {field: ..., <operator>: ...} or one of "
                    f"all/any/not; this one has {', '.join(groups + ops)}"
                )
            return self
        if "field" not in given:
            raise ValueError("a condition needs 'field' (or all/any/not)")
        if len(ops) != 1:
            raise ValueError(
                f"condition on field {self.field!r} needs exactly one operator of "
                f"{', '.join(_OPERATORS)}" + (f"; got {', '.join(ops)}" if ops else "")
            )
        return self

    @property
    def operator(self) -> str | None:
        for op in _OPERATORS:
            if (op + "_" if op == "in" else op) in self.model_fields_set:
                return op
        return None


Predicate = Callable[[Mapping[str, Any]], bool]


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    return a is not None and b is not None and str(a) == str(b)


def compile_condition(cond: Condition) -> Predicate:
    if cond.all_ is not None:
        parts = [compile_condition(c) for c in cond.all_]
        return lambda rec: all(p(rec) for p in parts)
    if cond.any_ is not None:
        parts = [compile_condition(c) for c in cond.any_]
        return lambda rec: any(p(rec) for p in parts)
    if cond.not_ is not None:
        inner = compile_condition(cond.not_)
        return lambda rec: not inner(rec)
    assert cond.field is not None
    get = make_getter(cond.field, absent=None)
    op = cond.operator
    if op == "equals":
        want = cond.equals
        return lambda rec: _same(get(rec), want)
    if op == "not_equals":
        want = cond.not_equals
        return lambda rec: not _same(get(rec), want)
    if op in ("in", "not_in"):
        options = list((cond.in_ if op == "in" else cond.not_in) or [])
        texts = {str(o) for o in options if o is not None}
        has_none = any(o is None for o in options)

        def member(rec: Mapping[str, Any]) -> bool:
            value = get(rec)
            if value is None:
                return has_none
            return value in options or str(value) in texts

        return member if op == "in" else (lambda rec: not member(rec))
    if op == "is_null":
        return lambda rec: _is_null(get(rec))
    if op == "not_null":
        return lambda rec: not _is_null(get(rec))
    if op == "matches":
        rx = re.compile(cond.matches or "")
        return lambda rec: (v := get(rec)) is not None and rx.search(str(v)) is not None
    raise AssertionError(f"unhandled operator {op!r}")

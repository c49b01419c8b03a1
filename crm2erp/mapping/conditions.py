"""Compile :class:`~crm2erp.mapping.models.Condition` trees into predicates.

Values compare equal when they are ``==`` or, failing that, when their text
is equal - a CSV ``"5"`` matches ``equals: 5``. Null means None or a blank
string.
"""

from __future__ import annotations

__all__ = ["compile_condition", "Predicate"]

import re
from collections.abc import Callable, Mapping
from typing import Any

from crm2erp.mapping.models import Condition
from crm2erp.mapping.paths import make_getter

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

"""Odoo search domains, evaluated in Python (for the emulator).

A domain is a list in Polish (prefix) notation: terms ``[field, op, value]``
and the operators ``'&'``, ``'|'`` (binary) and ``'!'`` (unary); terms next
to each other are implicitly and-ed. Supported term operators: ``=``,
``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in``, ``like``,
``ilike``, ``not like``, ``not ilike``, ``=like``, ``=ilike``. As in Odoo,
``False`` matches an empty field and ``('x', '!=', False)`` means "is set".
"""

from __future__ import annotations

__all__ = ["DomainError", "compile_domain"]

import fnmatch
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]
_OPS = ("=", "!=", "<>", "<", "<=", ">", ">=", "in", "not in", "like", "ilike",
        "not like", "not ilike", "=like", "=ilike")


class DomainError(ValueError):
    """A malformed domain (Odoo answers ``ValueError: Invalid leaf ...``)."""


def _empty(value: Any) -> bool:
    return value is None or value is False or value == [] or value == ""


def _value(record: dict[str, Any], field: str) -> Any:
    value = record.get(field)
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], int) \
            and isinstance(value[1], str):
        return value[0]  # a many2one as read
    return value


def _term(field: str, op: str, arg: Any) -> Predicate:
    if op not in _OPS:
        raise DomainError(f"Invalid leaf {[field, op, arg]!r}: unknown operator {op!r}")
    if op in ("=", "!=", "<>") and arg is False:
        wanted_empty = op == "="
        return lambda r: _empty(_value(r, field)) == wanted_empty
    if op in ("in", "not in"):
        if not isinstance(arg, list | tuple):
            raise DomainError(f"Invalid leaf {[field, op, arg]!r}: 'in' needs a list")
        pool = set(arg)
        with_false = False in pool
        inside = op == "in"
        return lambda r: ((_value(r, field) in pool) or (with_false and
                                                         _empty(_value(r, field)))) == inside

    def compare(record: dict[str, Any]) -> bool:
        value = _value(record, field)
        if op in ("=", "!="):
            return (value == arg) == (op == "=")
        if op == "<>":
            return value != arg
        if op in ("like", "ilike", "not like", "not ilike"):
            text, needle = str(value or ""), str(arg)
            if "ilike" in op:
                text, needle = text.lower(), needle.lower()
            return (needle in text) != op.startswith("not")
        if op in ("=like", "=ilike"):
            text, pattern = str(value or ""), str(arg).replace("%", "*").replace("_", "?")
            if op == "=ilike":
                text, pattern = text.lower(), pattern.lower()
            return fnmatch.fnmatchcase(text, pattern)
        if _empty(value) and value != 0:
            return False
        try:
            return {"<": value < arg, "<=": value <= arg, ">": value > arg,
                    ">=": value >= arg}[op]
        except TypeError:
            return False

    return compare


def compile_domain(domain: list[Any]) -> Predicate:
    """A predicate for ``domain``; raises :class:`DomainError` when it is malformed."""
    if not isinstance(domain, list):
        raise DomainError(f"a domain must be a list, got {type(domain).__name__}")
    items = list(domain)
    pos = 0

    def parse() -> Predicate:
        nonlocal pos
        if pos >= len(items):
            raise DomainError(f"Domain {domain!r}: an operator is missing an operand")
        item = items[pos]
        pos += 1
        if item in ("&", "|"):
            left, right = parse(), parse()
            if item == "&":
                return lambda r: left(r) and right(r)
            return lambda r: left(r) or right(r)
        if item == "!":
            inner = parse()
            return lambda r: not inner(r)
        if isinstance(item, list | tuple) and len(item) == 3 and isinstance(item[0], str):
            return _term(item[0], item[1], item[2])
        if item in (True, 1, [1, "=", 1]):
            return lambda r: True
        raise DomainError(f"Invalid leaf {item!r}")

    parts = []
    while pos < len(items):
        parts.append(parse())
    return lambda r: all(p(r) for p in parts)

"""A small OData v2 ``$filter`` parser, used by the SAP emulator.

Understands what integration clients send: ``eq ne gt ge lt le``, ``and``,
``or``, ``not``, parentheses, and the literals ``'text'``, numbers,
``true``/``false``/``null``, ``datetime'...'``, ``datetimeoffset'...'``,
``time'PT..'`` and ``guid'...'``. Parsing gives a predicate over a dict of
Python values (datetimes, times, Decimals, strings, booleans).
"""

from __future__ import annotations

__all__ = ["FilterError", "parse_filter"]

import datetime as dt
import operator
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from crm2erp.connectors.sap.odata import parse_time

_TOKEN = re.compile(r"""\s*(?:
    (?P<typed>(?:datetimeoffset|datetime|time|guid)'(?:[^']|'')*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>-?\d+(?:\.\d+)?[mMdDlL]?)
  | (?P<paren>[()])
  | (?P<word>[A-Za-z_][A-Za-z0-9_/]*)
)""", re.VERBOSE)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "ge": operator.ge,
    "lt": operator.lt, "le": operator.le}
Predicate = Callable[[dict[str, Any]], bool]


class FilterError(ValueError):
    """The ``$filter`` text is not valid (the emulator answers 400)."""


class _Field:
    def __init__(self, name: str):
        self.name = name


def _typed(text: str) -> Any:
    kind, raw = text.split("'", 1)
    raw = raw[:-1].replace("''", "'")
    if kind == "time":
        return parse_time(raw)
    if kind == "guid":
        return raw
    value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _tokens(text: str) -> list[tuple[str, Any]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterError(f"invalid $filter near {text[pos:pos + 20]!r}")
        pos = match.end()
        kind = match.lastgroup
        value = match[kind]
        if kind == "typed":
            try:
                out.append(("value", _typed(value)))
            except ValueError as exc:
                raise FilterError(f"invalid literal {value}: {exc}") from None
        elif kind == "string":
            out.append(("value", value[1:-1].replace("''", "'")))
        elif kind == "number":
            out.append(("value", Decimal(value.rstrip("mMdDlL"))))
        elif kind == "paren":
            out.append((value, value))
        elif value in ("true", "false"):
            out.append(("value", value == "true"))
        elif value == "null":
            out.append(("value", None))
        elif value in ("and", "or", "not") or value in _OPS:
            out.append((value, value))
        else:
            out.append(("value", _Field(value)))
    return out


def _coerce(left: Any, right: Any) -> tuple[Any, Any]:
    if isinstance(left, Decimal) != isinstance(right, Decimal) and None not in (left, right):
        try:
            return Decimal(str(left)), Decimal(str(right))
        except InvalidOperation:
            pass
    return left, right


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]], fields: set[str] | None):
        self.tokens, self.pos, self.fields = tokens, 0, fields

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self, kind: str) -> Any:
        if self.peek() != kind:
            raise FilterError(f"$filter: expected {kind!r}, found {self.peek()!r}")
        self.pos += 1
        return self.tokens[self.pos - 1][1]

    def expr(self) -> Predicate:
        left = self.conj()
        while self.peek() == "or":
            self.take("or")
            a, b = left, self.conj()
            left = lambda row, a=a, b=b: a(row) or b(row)  # noqa: E731
        return left

    def conj(self) -> Predicate:
        left = self.unary()
        while self.peek() == "and":
            self.take("and")
            a, b = left, self.unary()
            left = lambda row, a=a, b=b: a(row) and b(row)  # noqa: E731
        return left

    def unary(self) -> Predicate:
        if self.peek() == "not":
            self.take("not")
            inner = self.unary()
            return lambda row: not inner(row)
        if self.peek() == "(":
            self.take("(")
            inner = self.expr()
            self.take(")")
            return inner
        left, op, right = self.operand(), self.peek(), None
        if op not in _OPS:
            raise FilterError(f"$filter: expected a comparison operator, found {op!r}")
        self.pos += 1
        right = self.operand()
        compare = _OPS[op]

        def check(row: dict[str, Any]) -> bool:
            a, b = _coerce(*(row.get(v.name) if isinstance(v, _Field) else v
                             for v in (left, right)))
            if op not in ("eq", "ne") and (a is None or b is None):
                return False
            try:
                return bool(compare(a, b))
            except TypeError:
                return False
        return check

    def operand(self) -> Any:
        value = self.take("value")
        if isinstance(value, _Field) and self.fields is not None and value.name not in self.fields:
            raise FilterError(f"Property {value.name} not found in type")
        return value


def parse_filter(text: str, fields: set[str] | None = None) -> Predicate:
    parser = _Parser(_tokens(text), fields)
    predicate = parser.expr()
    if parser.peek() is not None:
        raise FilterError(f"$filter: unexpected {parser.peek()!r}")
    return predicate

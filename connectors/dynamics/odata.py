"""The OData ``$filter`` subset the Dataverse emulator understands.

Comparisons ``column eq|ne|gt|ge|lt|le literal`` combined with ``and``,
``or``, ``not`` and parentheses. Literals: ``'text'`` (quotes doubled),
numbers, ``true``/``false``/``null``, GUIDs, dates and ``...Z`` datetimes.
That covers what connectors send (watermark filters, key lookups, audit
queries); anything else is refused with the Web API's own error code.
"""

from __future__ import annotations

__all__ = ["ODataError", "parse_filter", "parse_key", "Predicate"]

import datetime as dt
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]
_TOKEN = re.compile(r"""\s*(?:(?P<str>'(?:[^']|'')*')|(?P<lp>\()|(?P<rp>\))
    |(?P<dt>\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?Z)
    |(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
    |(?P<date>\d{4}-\d\d-\d\d)|(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_]*))""",
                    re.X)
_OPS = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
        "gt": lambda a, b: a is not None and b is not None and a > b,
        "ge": lambda a, b: a is not None and b is not None and a >= b,
        "lt": lambda a, b: a is not None and b is not None and a < b,
        "le": lambda a, b: a is not None and b is not None and a <= b}


class ODataError(ValueError):
    """A query the Web API would refuse; ``code`` is the Dataverse error code."""

    def __init__(self, message: str, code: str = "0x80060888"):
        super().__init__(message)
        self.code = code


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ODataError(f"Syntax error at position {pos} in '{text}'.")
        kind = m.lastgroup or ""
        out.append((kind, m[kind]))
        pos = m.end()
    return out


def _literal(kind: str, value: str) -> Any:
    if kind == "str":
        return value[1:-1].replace("''", "'")
    if kind == "num":
        return Decimal(value)
    if kind == "dt":
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "guid":
        return str(uuid.UUID(value))
    return {"true": True, "false": False, "null": None}[value]


def parse_filter(text: str, columns: set[str]) -> Predicate:
    """Compile ``text`` into a predicate over records (dicts keyed by column)."""
    tokens = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise ODataError(f"Unexpected end of filter '{text}'.")
        pos += 1
        return tokens[pos - 1]

    def expr() -> Predicate:
        left = term()
        while (tok := peek()) and tok == ("word", "or"):
            take()
            right, prev = term(), left
            left = (lambda p, q: lambda r: p(r) or q(r))(prev, right)
        return left

    def term() -> Predicate:
        left = factor()
        while (tok := peek()) and tok == ("word", "and"):
            take()
            right, prev = factor(), left
            left = (lambda p, q: lambda r: p(r) and q(r))(prev, right)
        return left

    def factor() -> Predicate:
        kind, value = take()
        if (kind, value) == ("word", "not"):
            inner = factor()
            return lambda r: not inner(r)
        if kind == "lp":
            inner = expr()
            if take()[0] != "rp":
                raise ODataError(f"')' expected in filter '{text}'.")
            return inner
        if kind != "word" or value in _OPS:
            raise ODataError(f"Syntax error: column name expected in '{text}'.")
        if value not in columns:
            raise ODataError(f"Could not find a property named '{value}' on type "
                             "'Microsoft.Dynamics.CRM.entity'.")
        op_kind, op = take()
        if op_kind != "word" or op not in _OPS:
            raise ODataError(f"Syntax error: unknown operator '{op}' in '{text}'.")
        lit_kind, lit = take()
        if lit_kind in ("lp", "rp") or (lit_kind == "word" and lit not in
                                        ("true", "false", "null")):
            raise ODataError(f"Syntax error: literal expected after '{op}' in '{text}'.")
        want, compare, column = _literal(lit_kind, lit), _OPS[op], value

        def check(record: dict[str, Any]) -> bool:
            have = record.get(column)
            if isinstance(have, int | float) and not isinstance(have, bool):
                have = Decimal(str(have))
            if isinstance(have, str) and isinstance(want, str):
                return compare(have.lower(), want.lower())  # Dataverse collation: no case
            try:
                return bool(compare(have, want))
            except TypeError:
                return False
        return check

    predicate = expr()
    if pos != len(tokens):
        raise ODataError(f"Syntax error at '{tokens[pos][1]}' in filter '{text}'.")
    return predicate


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_KEY_PART = re.compile(r"\s*([a-z_][a-z0-9_]*)\s*=\s*('(?:[^']|'')*'|-?\d+(?:\.\d+)?)\s*(,|$)")


def parse_key(text: str, key_column: str) -> dict[str, Any]:
    """A key segment: ``<guid>`` -> ``{key_column: guid}``; ``a='x',b=2`` -> ``{a: 'x', b: 2}``."""
    text = text.strip()
    if _GUID.match(text):
        return {key_column: str(uuid.UUID(text))}
    out: dict[str, Any] = {}
    pos = 0
    while pos < len(text):
        m = _KEY_PART.match(text, pos)
        if not m:
            raise ODataError(f"Bad Request - Error in query syntax: invalid key '{text}'.",
                             code="0x80060891")
        raw = m[2]
        out[m[1]] = raw[1:-1].replace("''", "'") if raw.startswith("'") else raw
        pos = m.end()
    if not out:
        raise ODataError("Bad Request - Error in query syntax: empty key.", code="0x80060891")
    return out

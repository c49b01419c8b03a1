"""The OData ``$filter`` grammar the API emulators understand (SAP: V2, Dataverse: V4).

One parser for both versions: ``eq ne gt ge lt le``, ``and``, ``or``, ``not``,
parentheses, ``'text'`` (quotes doubled), numbers, ``true``/``false``/``null``
and property paths on either side of a comparison. The versions differ in
their literals only:

* V2 (:data:`V2`): typed literals ``datetime'2024-01-12T00:00:00'``,
  ``datetimeoffset'...'``, ``time'PT08H03M04S'``, ``guid'...'`` and number
  suffixes ``10m``/``1L``/``1.5d``;
* V4 (:data:`V4`): bare ``2024-01-01T00:00:00Z`` (or ``+01:00``), ``2024-01-01``
  and GUIDs; string comparisons can ignore case (Dataverse's collation).

Parsing gives a predicate over a record (a dict of Python values: datetimes,
dates, times, Decimals, strings, booleans). An ordering comparison with a
null is false; values that cannot be compared make a comparison false.
"""

from __future__ import annotations

__all__ = ["FilterError", "Dialect", "V2", "V4", "parse_filter", "Predicate"]

import datetime as dt
import operator
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "ge": operator.ge,
    "lt": operator.lt, "le": operator.le}
_COMMON = r"""(?P<string>'(?:[^']|'')*')|(?P<paren>[()])"""
_WORD = r"""(?P<word>[A-Za-z_][A-Za-z0-9_/]*)"""
_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d+))?S)?$")


class FilterError(ValueError):
    """The ``$filter`` text is not valid; ``unknown`` names a property the type lacks."""

    def __init__(self, message: str, unknown: str | None = None):
        super().__init__(message)
        self.unknown = unknown


class _Field:
    def __init__(self, name: str):
        self.name = name


def _datetime(raw: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _duration_time(raw: str) -> dt.time:
    match = _DURATION.match(raw.strip())
    if match is None:
        raise ValueError(f"{raw!r} is not an Edm.Time (PT12H00M00S)")
    hours, minutes, seconds = (int(match[i] or 0) for i in (1, 2, 3))
    return dt.time(hours, minutes, seconds, int((match[4] or "0")[:6].ljust(6, "0")))


def _v2_typed(text: str) -> Any:
    kind, raw = text.split("'", 1)
    raw = raw[:-1].replace("''", "'")
    if kind == "time":
        return _duration_time(raw)
    return raw if kind == "guid" else _datetime(raw)


@dataclass(frozen=True)
class Dialect:
    """The literals of one OData version, and how strings compare."""

    name: str
    literals: str                                   # regex alternatives, named groups
    converters: dict[str, Callable[[str], Any]]     # group name -> Python value
    ignore_case: bool = False

    def token_pattern(self) -> re.Pattern:
        return re.compile(rf"\s*(?:{self.literals}|{_COMMON}|{_WORD})", re.VERBOSE)


V2 = Dialect("OData V2", r"""
    (?P<typed>(?:datetimeoffset|datetime|time|guid)'(?:[^']|'')*')
  | (?P<number>-?\d+(?:\.\d+)?[mMdDlL]?)""",
             {"typed": _v2_typed, "number": lambda v: Decimal(v.rstrip("mMdDlL"))})
V4 = Dialect("OData V4", r"""
    (?P<datetime>\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d))
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
  | (?P<date>\d{4}-\d\d-\d\d)
  | (?P<number>-?\d+(?:\.\d+)?)""",
             {"datetime": _datetime, "guid": lambda v: str(uuid.UUID(v)),
              "date": dt.date.fromisoformat, "number": Decimal})
_KEYWORDS = {"true": True, "false": False, "null": None}


def _tokens(text: str, dialect: Dialect) -> list[tuple[str, Any]]:
    pattern, out, pos, text = dialect.token_pattern(), [], 0, text.strip()
    while pos < len(text):
        match = pattern.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterError(f"invalid $filter near {text[pos:pos + 20]!r}")
        pos, kind = match.end(), match.lastgroup
        value = match[kind]
        if kind in dialect.converters:
            try:
                out.append(("value", dialect.converters[kind](value)))
            except (ValueError, InvalidOperation) as exc:
                raise FilterError(f"invalid literal {value}: {exc}") from None
        elif kind == "string":
            out.append(("value", value[1:-1].replace("''", "'")))
        elif kind == "paren":
            out.append((value, value))
        elif value in _KEYWORDS:
            out.append(("value", _KEYWORDS[value]))
        elif value in ("and", "or", "not") or value in _OPS:
            out.append((value, value))
        else:
            out.append(("value", _Field(value)))
    return out


def _comparable(left: Any, right: Any, ignore_case: bool) -> tuple[Any, Any]:
    """Numbers compare as Decimals; strings without case when the dialect says so."""
    numbers = [isinstance(v, Decimal) for v in (left, right)]
    if any(numbers) and not all(numbers) and None not in (left, right) \
            and not isinstance(left, bool) and not isinstance(right, bool):
        try:
            return Decimal(str(left)), Decimal(str(right))
        except InvalidOperation:
            pass
    if ignore_case and isinstance(left, str) and isinstance(right, str):
        return left.lower(), right.lower()
    return left, right


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]], fields: set[str] | None, dialect: Dialect):
        self.tokens, self.pos, self.fields, self.dialect = tokens, 0, fields, dialect

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self, kind: str) -> Any:
        if self.peek() != kind:
            raise FilterError(f"$filter: expected {kind!r}, found {self.peek()!r}")
        self.pos += 1
        return self.tokens[self.pos - 1][1]

    def disjunction(self) -> Predicate:
        left = self.conjunction()
        while self.peek() == "or":
            self.take("or")
            a, b = left, self.conjunction()
            left = lambda row, a=a, b=b: a(row) or b(row)  # noqa: E731
        return left

    def conjunction(self) -> Predicate:
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
            inner = self.disjunction()
            self.take(")")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        left, op = self.operand(), self.peek()
        if op not in _OPS:
            raise FilterError(f"$filter: expected a comparison operator, found {op!r}")
        self.pos += 1
        right, compare, ignore_case = self.operand(), _OPS[op], self.dialect.ignore_case

        def check(row: dict[str, Any]) -> bool:
            a, b = _comparable(*(row.get(v.name) if isinstance(v, _Field) else v
                                 for v in (left, right)), ignore_case)
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
            raise FilterError(f"Property {value.name} not found in type", unknown=value.name)
        return value


def parse_filter(text: str, fields: set[str] | None = None, dialect: Dialect = V2) -> Predicate:
    """Compile ``text`` into a predicate; ``fields``: the properties a record may have
    (another name is a :class:`FilterError` with ``unknown`` set)."""
    parser = _Parser(_tokens(text, dialect), fields, dialect)
    predicate = parser.disjunction()
    if parser.peek() is not None:
        raise FilterError(f"$filter: unexpected {parser.peek()!r}")
    return predicate

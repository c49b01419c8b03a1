"""The small SOQL subset the emulator understands (and the connector emits).

Grammar, deliberately tiny::

    SELECT field, field... | COUNT()
    FROM SObject
    [WHERE cond AND cond ...]         cond: field op literal | field [NOT] IN (literal, ...)
    [ORDER BY field [ASC|DESC], ...]  op: = != <> < <= > >=
    [LIMIT n]

Literals: 'quoted strings' (backslash escapes), numbers, true/false, null,
dates (2024-01-31) and datetimes (2024-01-31T10:00:00Z, optional fraction
and +hh:mm offset), exactly as SOQL writes them. No OR, no parentheses, no
relationship paths, no functions: the connector never needs them, and a
query outside the subset gets the same MALFORMED_QUERY error a real org
would give for a syntax error.
"""

from __future__ import annotations

__all__ = ["SoqlError", "Condition", "Query", "parse"]

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

_QUERY = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$", re.I | re.S)
_COND = re.compile(
    r"\s*(?P<field>\w+)\s*(?P<op>!=|<>|<=|>=|=|<|>|NOT\s+IN\b|IN\b)\s*"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\([^)]*\)|[^\s()]+)\s*(?P<rest>(?:AND\s+.*)?)$", re.I | re.S)
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


class SoqlError(ValueError):
    """The query is outside the subset or malformed; ``code`` is the Salesforce errorCode."""

    def __init__(self, message: str, code: str = "MALFORMED_QUERY"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Condition:
    field: str
    op: str          # one of = != < <= > >= IN NOTIN
    value: Any

    def matches(self, record: dict[str, Any]) -> bool:
        have = record.get(self.field)
        if self.op in ("IN", "NOTIN"):
            return (have in self.value) == (self.op == "IN")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        if have is None or self.value is None:
            return False
        try:
            return {"<": have < self.value, "<=": have <= self.value,
                    ">": have > self.value, ">=": have >= self.value}[self.op]
        except TypeError:
            raise SoqlError(f"cannot compare {self.field} with {self.value!r}",
                            "INVALID_QUERY_FILTER_OPERATOR") from None


@dataclass
class Query:
    sobject: str
    fields: list[str]
    conditions: list[Condition] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    limit: int | None = None
    count_only: bool = False

    def run(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = [r for r in records if all(c.matches(r) for c in self.conditions)]
        for name, desc in reversed(self.order_by):  # stable sorts, last key first
            rows.sort(key=lambda r, n=name: (r.get(n) is None, r.get(n) or ""), reverse=desc)
        return rows if self.limit is None else rows[: self.limit]

    def referenced(self) -> set[str]:
        return set(self.fields) | {c.field for c in self.conditions} | {
            n for n, _ in self.order_by}


def _literal(text: str) -> Any:
    if text.startswith("'"):
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    if _DATETIME.match(text):
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if _DATE.match(text):
        return dt.date.fromisoformat(text)
    if _NUMBER.match(text):
        return Decimal(text)
    raise SoqlError(f"unexpected token: '{text}'")


def parse(soql: str) -> Query:
    match = _QUERY.match(soql)
    if not match:
        raise SoqlError("unexpected token: expected SELECT ... FROM ...")
    fields = [f.strip() for f in match["fields"].split(",")]
    count_only = [f.upper() for f in fields] == ["COUNT()"]
    if not count_only and not all(re.fullmatch(r"\w+", f) for f in fields):
        raise SoqlError(f"unsupported field list: {match['fields']}")
    query = Query(match["obj"], [] if count_only else fields, count_only=count_only)
    where = match["where"]
    while where:
        cond = _COND.match(where)
        if not cond:
            raise SoqlError(f"unexpected token near: {where[:40]}")
        op = re.sub(r"\s+", "", cond["op"].upper()).replace("<>", "!=")
        raw = cond["value"]
        if op in ("IN", "NOTIN"):
            if not raw.startswith("("):
                raise SoqlError("IN expects a parenthesised list")
            items = re.findall(r"'(?:[^'\\]|\\.)*'|[^,\s]+", raw[1:-1])
            value: Any = frozenset(_literal(i) for i in items)
        else:
            value = _literal(raw)
        query.conditions.append(Condition(cond["field"], op, value))
        rest = cond["rest"].strip()
        where = rest[3:].strip() if rest else ""
    if match["order"]:
        for part in match["order"].split(","):
            bits = part.split()
            if not bits or len(bits) > 2 or (len(bits) == 2 and bits[1].upper() not in
                                              ("ASC", "DESC")):
                raise SoqlError(f"unsupported ORDER BY: {part.strip()}")
            query.order_by.append((bits[0], len(bits) == 2 and bits[1].upper() == "DESC"))
    if match["limit"]:
        query.limit = int(match["limit"])
    return query


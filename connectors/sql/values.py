"""Value conversion between rows (python/JSON values) and database columns.

Rows reach ``upsert`` from mappings, so a timestamp may be an ISO string and
a number a string; every dialect wants the column's own python type. Reads
go the other way: naive timestamps are made aware in the configured time
zone so that downstream comparisons and hashes are unambiguous.
"""

from __future__ import annotations

__all__ = [
    "column_kind",
    "from_db",
    "to_db",
    "split_key",
    "parse_datetime",
    "cursor_json",
]

import datetime as dt
import functools
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

_TRUE = {"true", "t", "yes", "y", "1", "on"}
_FALSE = {"false", "f", "no", "n", "0", "off"}


def column_kind(coltype: sa.types.TypeEngine) -> str:
    """Classify a column type: datetime, date, integer, decimal, float, boolean, text, other."""
    if getattr(coltype, "display_width", None) == 1 and type(coltype).__name__ == "TINYINT":
        return "boolean"    # MySQL/MariaDB: BOOLEAN is TINYINT(1), and reflects as that
    return _kind_of(type(coltype))


#: Column type classes and their kind, the first that matches wins (DateTime before
#: Date, Integer and Float before Numeric: subclasses first).
_KINDS = ((sa.DateTime, "datetime"), (sa.Date, "date"), (sa.Boolean, "boolean"),
          (sa.Integer, "integer"), (sa.Float, "float"), (sa.Numeric, "decimal"),
          (sa.String, "text"))


@functools.cache
def _kind_of(coltype: type) -> str:
    """The kind depends on the type's class alone: worked out once per class."""
    return next((kind for base, kind in _KINDS if issubclass(coltype, base)), "other")


def parse_datetime(value: Any, tz: dt.tzinfo) -> dt.datetime:
    """An aware datetime from a datetime, date or ISO-8601 string (naive = ``tz``)."""
    if isinstance(value, str):   # SQLite's timestamps: text
        value = dt.datetime.fromisoformat(value.strip())
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise ValueError(f"expected a timestamp, got {type(value).__name__}")
    return value if value.tzinfo else value.replace(tzinfo=tz)


def from_db(value: Any, tz: dt.tzinfo) -> Any:
    """Normalise a value read from the database (naive datetimes get ``tz``)."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=tz)
    return value


def to_db(coltype: sa.types.TypeEngine, value: Any, tz: dt.tzinfo, dialect: str) -> Any:
    """Convert ``value`` to what a column of ``coltype`` accepts; ValueError if it cannot.

    Timestamps go in aware only where the column stores the zone (PostgreSQL
    ``timestamptz``); elsewhere they are converted to ``tz`` and made naive.
    """
    if value is None:
        return None
    kind = column_kind(coltype)
    try:
        if kind == "datetime":
            moment = parse_datetime(value, tz)
            if getattr(coltype, "timezone", False) and dialect == "postgresql":
                return moment
            moment = moment.astimezone(tz).replace(tzinfo=None)
            if dialect in ("mysql", "mariadb") and not getattr(coltype, "fsp", None):
                moment = moment.replace(microsecond=0)   # what DATETIME(0) keeps
            return moment
        if kind == "date":
            if isinstance(value, dt.datetime):
                return value.date()
            if isinstance(value, str):
                return dt.date.fromisoformat(value.strip()[:10])
            if isinstance(value, dt.date):
                return value
            raise ValueError
        if kind == "boolean":
            if isinstance(value, str):
                text = value.strip().lower()
                if text in _TRUE | _FALSE:
                    return text in _TRUE
                raise ValueError
            if isinstance(value, bool):
                return value
            if isinstance(value, int | float | Decimal) and value in (0, 1):
                return value == 1
            raise ValueError
        if kind == "integer":
            if isinstance(value, bool):
                return int(value)
            if isinstance(value, float | Decimal | str):
                number = Decimal(str(value).strip())
                if number != number.to_integral_value():
                    raise ValueError
                return int(number)
            return int(value)
        if kind == "decimal":
            return value if isinstance(value, Decimal) else Decimal(str(value).strip())
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "text":
            return _text(value)
    except (ValueError, TypeError, InvalidOperation, ArithmeticError):
        raise ValueError(f"cannot convert {value!r} to {kind}") from None
    return value


def _text(value: Any) -> Any:
    """A value for a text column: drivers bind a Decimal, a timestamp or a bool to a
    text column differently (SQLite refuses a Decimal), so each goes in as its text:
    a Decimal exactly as written, times in ISO-8601, booleans as ``true``/``false``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, int | float | Decimal):
        return str(value)
    return value


def split_key(key: str, count: int) -> list[str]:
    """Inverse of :func:`crm2erp.contract.key_text` for ``count`` key columns."""
    parts = str(key).split("|", count - 1) if count > 1 else [str(key)]
    if len(parts) != count:
        raise ValueError(f"key {key!r} does not have {count} parts separated by '|'")
    return parts


def cursor_json(value: Any, tz: dt.tzinfo) -> Any:
    """A cursor value as JSON: ISO-8601 with UTC offset for timestamps, numbers as numbers."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return parse_datetime(value, tz).astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, int | float | str):
        return value
    return str(value)

"""Cursor arithmetic: lookback, ordering, and the ``--since`` option.

Cursor values are JSON-friendly: ISO-8601 strings for timestamps, numbers
otherwise. They are compared as datetimes when both parse as ones.
"""

from __future__ import annotations

__all__ = ["apply_lookback", "later_cursor", "parse_since", "parse_duration"]

import datetime as dt
from typing import Any

from crm2erp.configtypes import parse_duration
from crm2erp.contract import Cursor
from crm2erp.errors import ConfigError


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def apply_lookback(cursor: Cursor | None, lookback: dt.timedelta) -> Cursor | None:
    """The cursor to read from: the watermark minus the lookback, key dropped.

    Dropping the key makes the read inclusive of every row at that instant,
    so rows sharing the watermark's timestamp are never skipped.
    """
    if cursor is None:
        return None
    moment = _as_datetime(cursor.value)
    if moment is not None:
        return Cursor((moment - lookback).isoformat())
    if isinstance(cursor.value, int | float) and lookback:
        return Cursor(cursor.value)
    return Cursor(cursor.value)


def _sort_key(cursor: Cursor):
    moment = _as_datetime(cursor.value)
    primary = moment.timestamp() if moment is not None else cursor.value
    return (primary, cursor.key or "")


def later_cursor(current: Cursor | None, candidate: Cursor | None) -> Cursor | None:
    """The later of two cursors: a backfill never moves a watermark back."""
    if candidate is None:
        return current
    if current is None:
        return candidate
    try:
        return candidate if _sort_key(candidate) > _sort_key(current) else current
    except TypeError:
        return candidate


def parse_since(text: str) -> Cursor:
    """``--since 2024-05-01`` or a full ISO timestamp (UTC when no offset)."""
    moment = _as_datetime(text)
    if moment is None:
        try:
            return Cursor(int(text))
        except ValueError:
            raise ConfigError(
                f"--since {text!r} is neither an ISO date/time (2024-05-01, "
                "2024-05-01T08:00:00+02:00) nor a number") from None
    return Cursor(moment.astimezone(dt.UTC).isoformat())

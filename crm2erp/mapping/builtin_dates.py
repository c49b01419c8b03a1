"""Date and time transforms: date, datetime (to aware UTC), format_date.

Canonical timestamps are always timezone-aware UTC. Naive inputs are read in
the ``tz`` the mapping names (a system that stores local time says so once,
in its mapping), never in the machine's local zone.
"""

from __future__ import annotations

__all__: list[str] = []

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

from crm2erp.mapping.registry import Args, TransformContext, transform


def _check_tz(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. 'Europe/Berlin')") from None
    return name


_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
TzName = Annotated[str, AfterValidator(_check_tz)]


class DateArgs(Args):
    format: str | None = None


@transform("date", args=DateArgs)
def to_date(value: Any, args: DateArgs, ctx: TransformContext) -> dt.date:
    """ISO ``2024-05-01`` (or ``format`` for strptime) to a date."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text:
        return None  # type: ignore[return-value]
    try:
        if args.format:
            return dt.datetime.strptime(text, args.format).date()
        if len(text) > 10:  # a full timestamp: keep its date part
            return dt.datetime.fromisoformat(text).date()
        return dt.date.fromisoformat(text)
    except ValueError:
        want = f"format {args.format!r}" if args.format else "ISO format YYYY-MM-DD"
        raise ValueError(f"{value!r} is not a date in {want}") from None


class DateTimeArgs(Args):
    format: str | None = None
    tz: TzName = "UTC"
    unit: Literal["s", "ms"] = "s"


@transform("datetime", args=DateTimeArgs, main="format")
def to_datetime(value: Any, args: DateTimeArgs, ctx: TransformContext) -> dt.datetime:
    """ISO text, ``format`` text, epoch numbers or datetimes to aware UTC."""
    zone = ZoneInfo(args.tz)
    if isinstance(value, dt.datetime):
        result = value
    elif isinstance(value, dt.date):
        result = dt.datetime.combine(value, dt.time())
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        seconds = float(value) / (1000 if args.unit == "ms" else 1)
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    else:
        text = str(value).strip()
        if not text:
            return None  # type: ignore[return-value]
        try:
            if args.format:
                result = dt.datetime.strptime(text, args.format)
            elif _NUMBER.match(text):  # epoch seconds/ms written as text
                return to_datetime(Decimal(text), args, ctx)
            else:
                result = dt.datetime.fromisoformat(text)
        except ValueError:
            want = f"format {args.format!r}" if args.format else "ISO 8601"
            raise ValueError(f"{value!r} is not a timestamp in {want}") from None
    if result.tzinfo is None:
        result = result.replace(tzinfo=zone)
    return result.astimezone(dt.UTC)


class FormatDateArgs(Args):
    format: str | None = None
    tz: TzName = "UTC"


@transform("format_date", args=FormatDateArgs, main="format")
def format_date(value: Any, args: FormatDateArgs, ctx: TransformContext) -> str:
    """Outbound: a date/datetime (or ISO text) as text in ``tz``.

    Aware datetimes are converted to ``tz``; naive ones are taken as UTC.
    Without ``format`` the result is ISO 8601.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.date.fromisoformat(text) if len(text) == 10 else (
                dt.datetime.fromisoformat(text))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO date or timestamp") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(ZoneInfo(args.tz))
    elif not isinstance(value, dt.date):
        raise ValueError(f"{value!r} is not a date or timestamp")
    return value.strftime(args.format) if args.format else value.isoformat()

"""Number and boolean transforms: decimal, int, bool, round, multiply...

Money never goes through float: text is parsed straight to Decimal, floats
via their shortest ``repr`` (so ``0.1`` stays ``Decimal('0.1')``), and
rounding is HALF_UP as accountants expect.
"""

from __future__ import annotations

__all__ = ["to_decimal"]

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import Field

from crm2erp.mapping.registry import Args, NoArgs, TransformContext, transform


def to_decimal(value: Any, *, decimal_sep: str = ".", thousands_sep: str | None = None) -> Decimal:
    """Parse ``value`` as a Decimal; raise ValueError naming the value."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not a number")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    text = str(value).strip().replace("\u00a0", "").replace(" ", "").replace("'", "")
    if thousands_sep is not None:
        text = text.replace(thousands_sep, "")
    else:  # drop the other separator only where it groups thousands: 1.234.567,8
        other = "." if decimal_sep == "," else ","
        grouped = (rf"^[+-]?\d{{1,3}}(?:{re.escape(other)}\d{{3}})+"
                   rf"(?:{re.escape(decimal_sep)}\d*)?$")
        if re.match(grouped, text):
            text = text.replace(other, "")
    if decimal_sep != ".":
        text = text.replace(decimal_sep, ".")
    try:
        result = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return result


def _quantize(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


class DecimalArgs(Args):
    places: int | None = Field(default=None, ge=0, le=28)
    decimal_sep: Literal[".", ","] = "."
    thousands_sep: str | None = None


@transform("decimal", args=DecimalArgs, main="places")
def decimal(value: Any, args: DecimalArgs, ctx: TransformContext) -> Decimal:
    """Text or number to Decimal; ``decimal_sep: ","`` reads ``1.234,56``."""
    result = to_decimal(value, decimal_sep=args.decimal_sep, thousands_sep=args.thousands_sep)
    return result if args.places is None else _quantize(result, args.places)


@transform("int")
def to_int(value: Any, args: NoArgs, ctx: TransformContext) -> int:
    """Whole numbers only: ``"12"`` and ``12.0`` pass, ``12.5`` is an error."""
    number = to_decimal(value)
    if number != number.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


_TRUE = {"true", "yes", "y", "1", "t", "on", "ja", "x"}
_FALSE = {"false", "no", "n", "0", "f", "off", "nein"}


@transform("bool")
def to_bool(value: Any, args: NoArgs, ctx: TransformContext) -> bool | None:
    """Yes/no text to a bool; a blank string is None (unknown), not False."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a yes/no value (use true/false, yes/no, y/n, 1/0)")


class RoundArgs(Args):
    places: int = Field(default=0, ge=0, le=28)


@transform("round", args=RoundArgs)
def round_(value: Any, args: RoundArgs, ctx: TransformContext) -> Decimal:
    return _quantize(to_decimal(value), args.places)


class MultiplyArgs(Args):
    factor: Decimal


@transform("multiply", args=MultiplyArgs)
def multiply(value: Any, args: MultiplyArgs, ctx: TransformContext) -> Decimal:
    return to_decimal(value) * args.factor


def _number(value: Any) -> int | float | Decimal:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    return to_decimal(value)


@transform("abs")
def abs_(value: Any, args: NoArgs, ctx: TransformContext) -> int | float | Decimal:
    number = _number(value)
    return -number if number < 0 else number


@transform("negate")
def negate(value: Any, args: NoArgs, ctx: TransformContext) -> int | float | Decimal:
    return -_number(value)

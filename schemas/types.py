"""Annotated field types shared by the canonical models.

Each type normalises on the way in (so two spellings of the same value compare
equal and hash equal) and refuses what cannot be normalised, with a message
that says what was expected.
"""

from __future__ import annotations

__all__ = ["Money", "Quantity", "Percent", "CurrencyCode", "CountryCode",
           "UtcDatetime", "Email", "Phone", "NonEmptyStr", "normal_email", "e164_phone"]

import datetime as dt
from decimal import Decimal
from functools import lru_cache
from typing import Annotated

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, StringConstraints


@lru_cache(maxsize=4096)   # a few hundred codes: each looked up in pycountry once
def _currency(value: str) -> str:
    code = value.strip().upper()
    if pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. EUR, USD)")
    return code


@lru_cache(maxsize=4096)
def _country(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. DE, US); "
                         "map names with the 'country' transform")
    return code


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime has no time zone; give one (the 'datetime' transform "
                         "takes tz:) so it can be stored as UTC")
    return value.astimezone(dt.UTC)


# A record's e-mail and phone are checked again within its batch (mapping, model,
# outbound), so a few thousand entries catch the repeats; a larger cache only grows a
# long run's memory (65,536 entries were ~16 MB each: 159 MB peak at 1M records).
RECHECK_CACHE = 8192


class _Accepted:
    """Values a validator already accepted in their normal form, so a value the
    mapping normalised is not parsed again when the canonical model checks it.
    Bounded: emptied when full (a miss only costs a parse)."""

    def __init__(self, size: int = RECHECK_CACHE):
        self.size, self.values = size, set()

    def add(self, value: str) -> str:
        if len(self.values) >= self.size:
            self.values.clear()
        self.values.add(value)
        return value

    def __contains__(self, value: str) -> bool:
        return value in self.values


_PHONES, _EMAILS = _Accepted(), _Accepted()


def normal_email(text: str) -> str:
    """``email_validator``'s normal form of an address; EmailNotValidError if invalid."""
    normal = _validated_email(text)
    return _EMAILS.add(normal) if normal == normal.lower() else normal


@lru_cache(maxsize=16384)   # a value is parsed once: many records share an address
def _validated_email(text: str) -> str:
    return validate_email(text, check_deliverability=False).normalized


def e164_phone(text: str, region: str | None) -> str | None:
    """The E.164 form of a phone number read in ``region``, None when it is not a valid
    number; phonenumbers.NumberParseException when it is not a phone number at all."""
    normal = _parsed_phone(text, region)
    return None if normal is None else _PHONES.add(normal)


@lru_cache(maxsize=16384)   # errors are not cached: a bad value is parsed each time
def _parsed_phone(text: str, region: str | None) -> str | None:
    number = phonenumbers.parse(text, region)
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=RECHECK_CACHE)
def _email(value: str) -> str:
    if value in _EMAILS:
        return value
    try:
        return normal_email(value.strip()).lower()
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid e-mail address: {exc}") from None


@lru_cache(maxsize=RECHECK_CACHE)
def _phone(value: str) -> str:
    if value in _PHONES:
        return value
    try:
        normal = e164_phone(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{value!r} is not an E.164 phone number (+ and country code); "
                         "normalise it with the 'phone' transform") from None
    if normal is None:
        raise ValueError(f"{value!r} is not a valid phone number")
    return normal


Money = Annotated[Decimal, Field(max_digits=18, decimal_places=4)]
Quantity = Annotated[Decimal, Field(max_digits=18, decimal_places=6)]
Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=4)]
CurrencyCode = Annotated[str, AfterValidator(_currency)]
CountryCode = Annotated[str, AfterValidator(_country)]
UtcDatetime = Annotated[dt.datetime, AfterValidator(_utc)]
Email = Annotated[str, AfterValidator(_email)]
Phone = Annotated[str, AfterValidator(_phone)]
NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

"""Look-up transforms: country, phone, email, value_map, xref.

These lean on maintained libraries - ``pycountry`` for ISO 3166,
``phonenumbers`` for E.164, ``email_validator`` for addresses - rather than
home-made regexes; a value they reject is a record error naming the value.
"""

from __future__ import annotations

__all__ = ["country_code"]

import functools
import unicodedata
from typing import Any, Literal

import email_validator
import phonenumbers
import pycountry
from pydantic import model_validator

from crm2erp.errors import ParentMissingError
from crm2erp.mapping.paths import get_path
from crm2erp.mapping.registry import Args, NoArgs, TransformContext, transform
from crm2erp.schemas.types import e164_phone, normal_email

# Everyday names pycountry does not know (keys: lower-case, no dots).
_COUNTRY_ALIASES = {
    "deutschland": "DE", "germany": "DE", "brd": "DE",
    "uk": "GB", "england": "GB", "scotland": "GB", "wales": "GB", "great britain": "GB",
    "britain": "GB", "united kingdom": "GB", "northern ireland": "GB",
    "usa": "US", "us": "US", "america": "US", "united states of america": "US",
    "holland": "NL", "niederlande": "NL", "the netherlands": "NL",
    "österreich": "AT", "oesterreich": "AT", "schweiz": "CH", "suisse": "CH", "svizzera": "CH",
    "frankreich": "FR", "italien": "IT", "spanien": "ES", "españa": "ES", "belgien": "BE",
    "polen": "PL", "dänemark": "DK", "schweden": "SE", "norwegen": "NO", "tschechien": "CZ",
    "czech republic": "CZ", "russia": "RU", "south korea": "KR", "north korea": "KP",
    "vietnam": "VN", "iran": "IR", "syria": "SY", "laos": "LA", "taiwan": "TW",
    "bolivia": "BO", "venezuela": "VE", "tanzania": "TZ", "moldova": "MD",
    "ivory coast": "CI", "uae": "AE", "emirates": "AE",
    # names in the country's own language, as CRM users type them
    "italia": "IT", "nederland": "NL", "belgique": "BE", "belgië": "BE", "sverige": "SE",
    "norge": "NO", "danmark": "DK", "suomi": "FI", "polska": "PL", "česko": "CZ",
    "slovensko": "SK", "magyarország": "HU", "hrvatska": "HR", "éire": "IE", "ελλάδα": "GR",
    "brasil": "BR", "méxico": "MX", "türkiye": "TR", "rossiya": "RU",
}


@functools.lru_cache(maxsize=4096)
def country_code(name: str) -> str:
    """ISO 3166-1 alpha-2 code for a code, name or common alias; ValueError if unknown."""
    text = unicodedata.normalize("NFC", str(name)).strip()
    key = text.lower().replace(".", "").strip()
    if key in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[key]
    try:
        return pycountry.countries.lookup(text).alpha_2
    except LookupError:
        raise ValueError(f"{name!r} is not a known country (use an ISO code or name)") from None


@transform("country")
def country(value: Any, args: NoArgs, ctx: TransformContext) -> str | None:
    if isinstance(value, str) and not value.strip():
        return None
    return country_code(str(value))


class PhoneArgs(Args):
    region: str | None = None
    region_from: str | None = None

    @model_validator(mode="after")
    def _one_region(self) -> PhoneArgs:
        if self.region and self.region_from:
            raise ValueError("give either 'region' or 'region_from', not both")
        if self.region:
            country_code(self.region)  # raises ValueError for an unknown region
        return self


@transform("phone", args=PhoneArgs, main="region")
def phone(value: Any, args: PhoneArgs, ctx: TransformContext) -> str | None:
    """Any written form of a phone number to E.164 (``+4930123456``)."""
    text = str(value).strip()
    if not text:
        return None
    region = country_code(args.region) if args.region else None
    if args.region_from:
        raw = get_path(ctx.source, args.region_from)
        if raw is not None and str(raw).strip():
            region = country_code(str(raw))
    try:
        normal = e164_phone(text, region)
    except phonenumbers.NumberParseException:
        hint = "" if region or text.startswith("+") else " (no region to read it in)"
        raise ValueError(f"{value!r} is not a valid phone number{hint}") from None
    if normal is None:
        raise ValueError(f"{value!r} is not a valid phone number")
    return normal


@transform("email")
def email(value: Any, args: NoArgs, ctx: TransformContext) -> str | None:
    text = str(value).strip().lower()
    if not text:
        return None
    try:
        return normal_email(text)
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid e-mail address ({exc})") from None


class ValueMapArgs(Args):
    map: dict[Any, Any]
    on_missing: Literal["error", "default", "keep"] = "error"
    default: Any = None
    case_insensitive: bool = False

    @functools.cached_property
    def table(self) -> dict[Any, Any]:
        """Each key as given, and as ``("str", text)`` (case-folded when
        ``case_insensitive``). Worked out on first use and kept in the instance's
        ``__dict__``: read once per record, where a pydantic private attribute
        would cost a ``__getattr__`` call."""
        table: dict[Any, Any] = {}
        for key, val in self.map.items():
            table[key] = val
            text = str(key).casefold() if self.case_insensitive else str(key)
            table.setdefault(("str", text), val)
        return table

    def find(self, value: Any) -> tuple[bool, Any]:
        table = self.table
        if not self.case_insensitive:
            try:
                if value in table:
                    return True, table[value]
            except TypeError:
                pass
        text = str(value).casefold() if self.case_insensitive else str(value)
        key = ("str", text)
        return (True, table[key]) if key in table else (False, None)


@transform("value_map", args=ValueMapArgs, main="map")
def value_map(value: Any, args: ValueMapArgs, ctx: TransformContext) -> Any:
    found, mapped = args.find(value)
    if found:
        return mapped
    if args.on_missing == "keep":
        return value
    if args.on_missing == "default":
        return args.default
    known = ", ".join(repr(k) for k in list(args.map)[:10])
    raise ValueError(f"{value!r} is not in the value map (known: {known})")


class XrefArgs(Args):
    entity: str


@transform("xref", args=XrefArgs)
def xref(value: Any, args: XrefArgs, ctx: TransformContext) -> str:
    """Translate an id through the cross-reference (inbound: to canonical).

    ParentMissingError propagates so the engine can park the record.
    """
    if ctx.resolver is None:
        raise ValueError("xref needs a resolver, but none was given")
    key = str(value)
    try:
        if ctx.direction == "inbound":
            return ctx.resolver.to_canonical(args.entity, ctx.system, key)
        return ctx.resolver.from_canonical(args.entity, ctx.system, key)
    except ParentMissingError as exc:
        if exc.field is None:
            exc.field = ctx.field
        raise

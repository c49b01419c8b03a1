"""Value normalisers used by blocking keys, deterministic rules and comparisons.

Each transform maps one value to a string or ``None`` (null). Nulls never
agree with anything: an empty name must not block or link two records.
Transforms chain (``[lower, first:3]``) and take an optional argument after a
colon (``first:3``, ``phone:DE``).
"""

from __future__ import annotations

__all__ = [
    "TRANSFORMS", "check_transform", "apply", "clean", "get_path", "normalise_phone", "region_code",
    "to_date",
]

import datetime as dt
import functools
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jellyfish
import phonenumbers
import pycountry

# legal forms, compared after dots are dropped and the text folded (so "G.m.b.H." is "gmbh")
_LEGAL_FORMS = {
    "ab", "ag", "as", "asa", "bv", "bvba", "co", "company", "corp", "corporation", "cv", "eg",
    "ek", "ev", "gbr", "gmbh", "inc", "incorporated", "kft", "kg", "kgaa", "limited", "llc",
    "llp", "lp", "ltd", "mbh", "nv", "ohg", "oy", "oyj", "plc", "pty", "sa", "sag", "sal",
    "sarl", "sas", "sasu", "se", "sl", "snc", "spa", "sprl", "sro", "srl", "ug", "vof",
}
_LEGAL_PHRASES = re.compile(
    r"\b(gesellschaft mit beschr(?:a|ae)nkter haftung|aktiengesellschaft|kommanditgesellschaft|"
    r"offene handelsgesellschaft|eingetragene genossenschaft|eingetragener verein|"
    r"haftungsbeschr(?:a|ae)nkt|sa rl|societe anonyme|societe a responsabilite limitee|"
    r"besloten vennootschap|naamloze vennootschap|societa per azioni|"
    r"societa a responsabilita limitata|sociedad anonima|sociedad limitada|"
    r"limited liability company|limited liability partnership|public limited company|"
    r"and company|und co|and co|u co)\b")
_CJK_FORMS = re.compile(r"(股份有限公司|有限责任公司|有限公司|株式会社|有限会社|合同会社)")
_STOP_WORDS = {"the", "und", "and", "et", "der", "die", "das", "de", "la", "le", "les", "of"}
# German transliteration first (ü is ue, not u), accents next (é is e)
_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe",
                           "Ü": "Ue", "ẞ": "SS", "æ": "ae", "Æ": "Ae", "ø": "o", "Ø": "O",
                           "œ": "oe", "Œ": "Oe", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D"})
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_DOTTED = re.compile(r"(?<=\w)\.(?=\w)")


def get_path(record: Mapping[str, Any], path: str) -> Any:
    """``record[path]``, following dots into nested dicts (``billing_address.city``)."""
    if path in record or "." not in path:
        return record.get(path)
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def clean(value: Any) -> str | None:
    """The value as a stripped string, or None for None/NaN/blank."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    text = str(value).strip()
    return text or None


def _fold(text: str) -> str:
    """Lower case, transliterated (ü -> ue, ß -> ss, é -> e), punctuation to single spaces."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFC", text).translate(_TRANSLIT))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def _company(text: str) -> str:
    """The distinctive part of a company name: legal forms, stop words, punctuation dropped.

    ``Müller Bau GmbH``, ``Mueller Bau G.m.b.H.`` and ``MÜLLER BAU Gesellschaft
    mit beschränkter Haftung`` all give ``mueller bau``. A name that is nothing
    but a legal form keeps its words (no empty key).
    """
    text = _CJK_FORMS.sub(" ", text)
    folded = _fold(_DOTTED.sub("", text).replace(".", " "))
    kept = _LEGAL_PHRASES.sub(" ", folded.replace("&", " and "))
    words = [w for w in kept.split() if w not in _LEGAL_FORMS and w not in _STOP_WORDS]
    return " ".join(words) or folded


@functools.lru_cache(maxsize=512)
def region_code(country: str | None) -> str | None:
    """A phonenumbers region (``DE``) from an ISO code or a country name; None if unknown."""
    text = clean(country)
    if text is None:
        return None
    if len(text) == 2 and text.isalpha():
        return text.upper()
    try:
        return pycountry.countries.lookup(text).alpha_2
    except LookupError:
        return None


def normalise_phone(text: str, region: str | None = None) -> str | None:
    """E.164 when phonenumbers can parse it, else the bare digits."""
    try:
        number = phonenumbers.parse(text, region)
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    digits = re.sub(r"\D", "", text)
    return digits or None


def to_date(value: Any) -> dt.date | None:
    """Dates from date/datetime, ISO strings or compact ``YYYYMMDD``; None if unparseable."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = clean(value)
    if text is None:
        return None
    for fmt in ("%Y-%m-%d", "%Y%m%d", "%d.%m.%Y", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(text[:10], fmt).date()
        except ValueError:
            continue
    try:
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        return None


def _email_domain(text: str) -> str | None:
    _, at, domain = text.lower().rpartition("@")
    return domain.strip() or None if at else None


def _iso_date(text: str) -> str | None:
    value = to_date(text)
    return value.isoformat() if value else None


_SIMPLE: dict[str, Callable[[str], str | None]] = {
    "lower": str.lower,
    "upper": str.upper,
    "strip": str.strip,
    "name": _fold,
    "company": _company,
    "digits": lambda s: re.sub(r"\D", "", s),
    "alnum": lambda s: re.sub(r"[^0-9a-z]", "", s.lower()),
    "soundex": jellyfish.soundex,
    "metaphone": jellyfish.metaphone,
    "nysiis": jellyfish.nysiis,
    "email": lambda s: s.strip().lower(),
    "email_domain": _email_domain,
    "tax_id": lambda s: re.sub(r"[^0-9A-Z]", "", s.upper()),
    "date": _iso_date,
}
_WITH_ARG = {"first", "last", "phone"}
TRANSFORMS = tuple(sorted(_SIMPLE)) + ("first:N", "last:N", "phone[:REGION]")


def check_transform(name: str) -> None:
    """Raise ValueError (turned into a config issue) for an unknown transform."""
    base, _, arg = name.partition(":")
    if base in _SIMPLE and not arg:
        return
    if base in ("first", "last") and arg.isdigit() and int(arg) > 0:
        return
    if base == "phone":
        return
    raise ValueError(f"unknown transform {name!r}; known: {', '.join(TRANSFORMS)}")


def _one(name: str) -> Callable[[str], str | None]:
    base, _, arg = name.partition(":")
    if base == "first":
        n = int(arg)
        return lambda s: s[:n]
    if base == "last":
        n = int(arg)
        return lambda s: s[-n:]
    if base == "phone":
        region = arg.upper() or None
        return lambda s: normalise_phone(s, region)
    return _SIMPLE[base]


def apply(values: Iterable[Any], transforms: list[str]) -> list[str | None]:
    """Clean every value, then run the transform chain; blanks become None.

    Results are cached per distinct value: columns such as city or state
    repeat a handful of values across thousands of records.
    """
    funcs = [_one(name) for name in transforms]
    cache: dict[Any, str | None] = {}

    def run(value: Any) -> str | None:
        text = clean(value)
        for func in funcs:
            if text is None:
                break
            text = func(text)
            text = text.strip() if text else None
        return text or None

    raw = values if isinstance(values, list) else list(values)
    try:
        distinct = dict.fromkeys(raw)
    except TypeError:  # unhashable values (lists, dicts): no caching
        return [run(value) for value in raw]
    if all(v is None or v.__class__ is str or v != v for v in distinct):
        # plain strings (and None/NaN, which miss the lookup and map to None)
        mapping = {v: run(v) for v in distinct}
        return [mapping.get(v) for v in raw]
    # mixed types: key on the class too, so 1, 1.0 and True stay apart
    cache: dict[Any, str | None] = {}
    out: list[str | None] = []
    for value in raw:
        key = (value.__class__, value)
        if key not in cache:
            cache[key] = run(value)
        out.append(cache[key])
    return out

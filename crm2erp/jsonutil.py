"""JSON encoding shared by the state store, dead letters, hashes and reports.

Decimals keep their exact text, datetimes become ISO-8601, so a payload read
back from the state store maps exactly as the original did.
"""

from __future__ import annotations

__all__ = ["dumps", "loads", "payload_hash", "short_hash", "text_hash", "to_jsonable"]

import datetime as dt
import functools
import hashlib
import json
import uuid
from decimal import Decimal
from enum import Enum
from typing import Any


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump(mode="json"))
    return value


def _default(value: Any) -> Any:
    """What ``json`` cannot encode itself, as :func:`to_jsonable` would give it."""
    # most often: rows' timestamps (the exact type first, the cheaper test)
    if type(value) is dt.datetime or isinstance(value, dt.date | dt.time):
        return value.isoformat()
    converted = to_jsonable(value)
    if converted is value:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
    return converted


# built once: ``json.dumps`` with options builds a new encoder on every call, and so
# does ``JSONEncoder.encode`` (its C encoder, made anew for each value's circular-
# reference check). The C encoder here is made once, without that check: a payload
# is never circular (to_jsonable, the fallback, would not end on one either).
_COMPACT = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                            default=_default)
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_C_COMPACT = _c_make_encoder and _c_make_encoder(
    None, _default, json.encoder.encode_basestring,  # type: ignore[attr-defined]
    None, ":", ",", True, False, True)


#: The top-level types the C encoder takes as they are (for a bare str, int and the
#: like, ``JSONEncoder.encode`` has its own shortcut).
_CONTAINERS = (dict, list)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """Sorted-key JSON; the same text as ``json.dumps(to_jsonable(value))``, but the
    C encoder walks the value and only what it cannot encode is converted."""
    if indent is None:
        try:
            if _C_COMPACT is not None and type(value) in _CONTAINERS:
                return "".join(_C_COMPACT(value, 0))
            return _COMPACT.encode(value)
        except (TypeError, ValueError):   # keys json will not take as they are: str() them
            pass
    options = dict(ensure_ascii=False, sort_keys=True, indent=indent,
                   separators=None if indent else (",", ":"))
    try:
        return json.dumps(value, default=_default, **options)
    except (TypeError, ValueError):
        return json.dumps(to_jsonable(value), **options)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def text_hash(text: str) -> str:
    """The first 64 bits of ``text``'s sha256, as 16 hex digits: what the state store
    keeps to recognise a payload it saw (8 bytes, crm2erp.store.types.Digest).

    A hash is only ever compared with the one stored for the same record, so the odds
    are per change, not a birthday bound: a changed payload keeps its record's last
    hash with odds of 2^-64 (5e-20; at a billion changes a day, once in about fifty
    billion years), and the cost is that one update taken for the last one, not
    written. Earlier crm2erp kept 128 bits; their first 64 are this hash (migration
    0014 cuts the stored ones)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def payload_hash(value: Any) -> str:
    """A stable hash of a payload: equal payloads, equal hashes, whatever key order
    (:func:`text_hash` of its JSON text)."""
    return text_hash(dumps(value))


def short_hash(value: Any) -> str:
    """:func:`payload_hash`'s little sibling: 64 bits (16 hex digits), for the hub
    memory's per-field values, where one is stored per field and system."""
    if type(value) is str:   # most field values; many repeat (codes, types, countries)
        return _short_text_hash(value)
    if value is None:
        return _NULL_HASH
    return hashlib.blake2b(dumps(value).encode(), digest_size=8).hexdigest()


@functools.lru_cache(maxsize=4096)
def _short_text_hash(text: str) -> str:
    # json.encoder.encode_basestring: what dumps(text) gives a str (ensure_ascii off)
    return hashlib.blake2b(json.encoder.encode_basestring(text).encode(),  # type: ignore[attr-defined]
                           digest_size=8).hexdigest()


_NULL_HASH = hashlib.blake2b(b"null", digest_size=8).hexdigest()

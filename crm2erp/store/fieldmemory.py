"""How the hub memory of a record is stored: its canonical data and ``field_times``.

The engine (:mod:`crm2erp.engine.memory`) decides what a record's fields mean
(news, echoes, conflicts); this module is the one reader and writer of their
stored form, shared with the migration that converts older stores.

``field_times`` (format 3)::

    {"v": 3, "by": system, "at": iso,        # the record's usual (who, when)
     "f": {path: [by, at] | null},           # fields with another pair, or none
     "s": {path: {system: hash}}}            # sent values that are not the stored one

Invariants: a leaf of the record's data not in ``f`` was last changed by
``(by, at)``; a path in neither has no change on record. What a system last
sent for a field is its ``s`` hash; the system that last changed the field
has none when it last sent the stored value (the one-source record, the
usual case, stores no hash at all). Hashes are
:func:`~crm2erp.jsonutil.short_hash` (64 bits: a collision only makes an
out-of-date value look like one the source sent already, odds 2^-64); values
remembered before the compact formats may carry sha256 (64 hex digits).
The data leaves out null fields nobody set: the canonical model's default
comes back when the record is next merged and validated.

On disk, a record's ``field_times`` and data are one value (:func:`encode`,
:func:`decode`, the only way in and out): a format byte, then the JSON
``[field_times, data]`` deflated with a fixed dictionary of the canonical
models' field names (the record's fields are named once in it, so a typical
record takes about half its JSON text). Format 2 writes the times of
``field_times`` (``at`` and those in ``f``) that are whole UTC seconds as
integer seconds since the epoch (10 digits instead of 25 characters: 8 bytes
less per benchmark account, deflated); :func:`decode` gives the same text back.
Format 3 is format 2 deflated with a second dictionary: each canonical model's
record as it is stored, its keys in order and its values empty, and the framing
of its ``field_times`` (a record's keys come out as a few long matches instead of
a match each: 30 bytes less per benchmark account, 191 -> 161). Every format
stays readable; :func:`encode` writes format 3, or format 1 when a time slot holds
something else than text (format 2 is no longer written).
"""

from __future__ import annotations

__all__ = ["flatten", "Pair", "FieldMemory", "compact_state", "encode", "decode"]

import datetime as dt
import zlib
from typing import Any

from crm2erp.jsonutil import dumps, loads, short_hash
from crm2erp.store.records import CanonicalState

Pair = tuple[str | None, str | None]   # (system, ISO time) of a field's last change
NOBODY: Pair = (None, None)
VERSION = 3


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> dotted paths; lists and scalars are leaves."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    flat: dict[str, Any] = {}
    if prefix:
        _flatten_into(data, f"{prefix}.", flat)
        return flat
    for key, value in data.items():   # the top level: its keys are the paths
        path = key if type(key) is str else str(key)
        if isinstance(value, dict) and value:
            _flatten_into(value, path + ".", flat)
        else:
            flat[path] = value
    return flat


def _flatten_into(data: dict, prefix: str, flat: dict[str, Any]) -> None:
    """:func:`flatten`'s walk, into one dict (``prefix``: the parent's path and a dot)."""
    for key, value in data.items():
        if type(key) is str:
            path = prefix + key
        else:   # as the f-string below the top, str() at the top (an Enum key's differ)
            path = f"{prefix}{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            _flatten_into(value, path + ".", flat)
        else:
            flat[path] = value


class FieldMemory:
    """One record's per-field memory, read from its stored state."""

    __slots__ = ("flat", "usual", "others", "sent")

    def __init__(self, state: CanonicalState | None):
        times = (state.field_times if state else None) or {}
        self.flat: dict[str, Any] = flatten(state.data) if state else {}
        self.usual: Pair = (times.get("by"), times.get("at"))
        self.others: dict[str, list | None] = times.get("f", {})
        self.sent: dict[str, dict[str, str]] = times.get("s", {})

    def pair(self, path: str) -> Pair:
        """(system, ISO time) of the field's last change, or (None, None)."""
        if path in self.others:
            raw = self.others[path]
            return (raw[0], raw[1]) if raw else NOBODY
        return self.usual if path in self.flat else NOBODY

    def pairs(self) -> dict[str, Pair]:
        """Path -> (system, time) for every field with a change on record."""
        out = dict.fromkeys(self.flat, self.usual) if self.usual != NOBODY else {}
        for path, raw in self.others.items():
            if raw:
                out[path] = (raw[0], raw[1])
            else:
                out.pop(path, None)
        return out

    def sent_by(self, path: str, system: str) -> str | None:
        """The hash of the value ``system`` last sent for ``path``; None when it sent
        nothing, or when it changed the field last and sent the stored value."""
        return self.sent.get(path, {}).get(system)

    def last_sent(self, path: str, system: str) -> str | None:
        """:meth:`sent_by`, with the stored value's hash for the field's last changer."""
        hashed = self.sent_by(path, system)
        if hashed is None and system is not None and self.pair(path)[0] == system:
            return short_hash(self.flat.get(path))
        return hashed


def _stored_content(data: dict[str, Any], pairs: dict[str, Pair], prefix: str,
                    flat: dict[str, Any]) -> dict[str, Any]:
    """``data`` without the null fields nobody set (a dict this empties goes too);
    its leaves go into ``flat`` as :func:`flatten` would list them, in one walk."""
    out: dict[str, Any] = {}
    dotted = f"{prefix}." if prefix else ""
    for key, value in data.items():
        path = dotted + key if type(key) is str else f"{prefix}.{key}" if prefix else str(key)
        if value is None and path not in pairs:
            continue
        if isinstance(value, dict) and value:
            value = _stored_content(value, pairs, path, flat)
            if not value:
                continue
        else:
            flat[path] = value
        out[key] = value
    return out


_NO_HASHES: dict[str, str] = {}


def _without(systems: dict[str, str], name: str | None) -> dict[str, str]:
    return {other: digest for other, digest in systems.items() if other != name}


def _usual_pair(flat: dict[str, Any], pairs: dict[str, Pair]) -> Pair:
    """The pair most of the stored fields share; on a tie, the first field's."""
    distinct = set(pairs.values())
    if len(distinct) == 1 and not flat.keys().isdisjoint(pairs):   # one source, the usual
        return distinct.pop()
    counts: dict[Pair, int] = {}
    for path in flat:
        pair = pairs.get(path)
        if pair is not None:
            counts[pair] = counts.get(pair, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else NOBODY


def compact_state(entity: str, canonical_id: str, data: dict[str, Any],
                  pairs: dict[str, Pair], sent: dict[str, dict[str, str]],
                  sent_now: tuple[str, dict[str, Any]] | None = None) -> CanonicalState:
    """The state to store for ``data`` (JSON form, without identity), its fields'
    last changes (``pairs``) and what each system last sent (``sent``: path ->
    system -> short hash; the last changer's hash of the stored value is left out).
    Equal inputs give equal states, so a record whose memory did not change is
    recognised and not written again.

    ``sent_now`` (system, path -> value), when given, is what that system sent
    now: its hash replaces the system's in ``sent``, hashed only where it is kept
    (not for the value the system changed last and is stored, that very object)."""
    flat: dict[str, Any] = {}
    content = _stored_content(data, pairs, "", flat)
    now_by, now_values = sent_now or ("", {})
    kept_sent: dict[str, dict[str, str]] = {}
    for path in (*sent, *(p for p in now_values if p not in sent)) if sent else now_values:
        systems = sent.get(path) or _NO_HASHES   # read, never changed in place
        changer = pairs.get(path, NOBODY)[0]
        value = flat.get(path)
        if path in now_values:
            sent_value = now_values[path]
            if changer == now_by and sent_value is value:
                if changer in systems:   # (a new record's memory has no hash to drop)
                    systems = _without(systems, changer)
            else:
                systems = {**systems, now_by: short_hash(sent_value)}
        if systems and changer in systems and systems[changer] == short_hash(value):
            systems = _without(systems, changer)
        if systems:
            kept_sent[path] = systems
    pair = _usual_pair(flat, pairs)
    others: dict[str, list | None] = {p: None for p in flat if p not in pairs}
    others.update({p: list(at) for p, at in pairs.items() if at != pair or p not in flat})
    times: dict[str, Any] = {"v": VERSION}
    if pair != NOBODY:
        times["by"], times["at"] = pair
    if others:
        times["f"] = others
    if kept_sent:
        times["s"] = kept_sent
    return CanonicalState(entity, canonical_id, content, times)


# -- the stored form -------------------------------------------------------------
#: The format byte of :func:`encode`'s value. A new format (another dictionary,
#: another codec) takes the next number and :func:`decode` keeps reading the older.
_DEFLATED = 1   # field_times as they are
_TIMED = 2      # times in whole UTC seconds as integers (_packed_times), else as format 1
_SHAPED = 3     # as format 2, deflated with _SHAPES instead of _DICTIONARY
# Format 1's dictionary: NEVER change it (stored records were deflated with it).
# The canonical models' field names, a few usual values and field_times' framing,
# the most frequent last (the nearest are the cheapest to refer to).
_DICTIONARY = ("".join(f'"{name}":' for name in (
    "account_id", "active", "address", "amount", "amount_due", "balance",
    "billing_address", "city", "close_date", "country", "credit_limit", "currency",
    "customer_number", "description", "discount_percent", "due_date", "email",
    "extensions", "first_name", "id", "industry", "invoice_date", "invoice_id",
    "invoice_number", "last_name", "legal_name", "line_no", "lines", "method", "mobile",
    "name", "opportunity_id", "order_date", "order_number", "owner", "payment_date",
    "payment_terms", "period", "phone", "postal_code", "probability", "product_code",
    "quantity", "reference", "region", "sales_order_id", "shipping_address", "sku",
    "stage", "status", "street", "street2", "tax_amount", "tax_id", "title",
    "total_amount", "type", "unit_price", "uom", "updated_at", "warehouse", "website"))
    + '"active","customer","EUR",null,true,false,'
    + '[{"at":"T00:00:00+00:00","by":"","f":{"s":{"v":3},{').encode()
# Format 3's dictionary: NEVER change it either. Each canonical model's record as
# encode() writes it, every field (sorted, "id" left out) with an empty value, the
# most frequent model last (Account) and field_times' framing just before it.
_SHAPES = (
    b'{"extensions":{},"period":"","product_code":"","quantity":"","uom":"","updated_at":"",'
    b'"warehouse":""}'
    b'{"account_id":"","amount":"","currency":"","extensions":{},"invoice_id":"",'
    b'"method":"","payment_date":"","reference":"","updated_at":""}'
    b'{"account_id":"","amount_due":"","currency":"","due_date":"","extensions":{},'
    b'"invoice_date":"","invoice_number":"","lines":[{"description":"","line_no":"",'
    b'"product_code":"","quantity":"","unit_price":""}],"sales_order_id":"",'
    b'"status":"posted","tax_amount":"","total_amount":"","updated_at":""}'
    b'{"account_id":"","billing_address":{"city":"","country":"","postal_code":"",'
    b'"region":"","street":"","street2":""},"currency":"","extensions":{},'
    b'"lines":[{"description":"","discount_percent":"","line_no":"","product_code":"",'
    b'"quantity":"","unit_price":""}],"opportunity_id":"","order_date":"","order_number":"",'
    b'"shipping_address":{"city":"","country":"","postal_code":"","region":"","street":"",'
    b'"street2":""},"status":"draft","total_amount":"","updated_at":""}'
    b'{"account_id":"","amount":"","close_date":"","currency":"","extensions":{},'
    b'"lines":[{"description":"","discount_percent":"","line_no":"","product_code":"",'
    b'"quantity":1,"unit_price":""}],"name":"","owner":"","probability":"","stage":"open",'
    b'"updated_at":""}'
    b'{"active":true,"currency":"","description":"","extensions":{},"name":"","sku":"",'
    b'"unit_price":"","uom":"","updated_at":""}'
    b'{"account_id":"","address":{"city":"","country":"","postal_code":"","region":"",'
    b'"street":"","street2":""},"email":"","extensions":{},"first_name":"","last_name":"",'
    b'"mobile":"","phone":"","title":"","updated_at":""}'
    b'[{"at":,"by":"","f":{"status":null},"s":{},"v":3},{"balance":"",'
    b'"billing_address":{"city":"","country":"","postal_code":"","region":"","street":"",'
    b'"street2":""},"credit_limit":"","currency":"","customer_number":"","email":"",'
    b'"extensions":{},"industry":"","legal_name":"","name":"","owner":"","payment_terms":"",'
    b'"phone":"","shipping_address":{"city":"","country":"","postal_code":"","region":"",'
    b'"street":"","street2":""},"status":"active","tax_id":"","type":"customer",'
    b'"updated_at":"","website":""}]'
)
_WINDOW = -12   # raw deflate (no header, no checksum), a 4 KiB window
_MEM_LEVEL = 2  # small records: a small compressor state is set up faster


def _iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def _seconds(iso: Any) -> int | None:
    """``iso`` as integer seconds when :func:`_iso` gives exactly that text back."""
    if type(iso) is not str or len(iso) != 25 or not iso.endswith("+00:00"):
        return None
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return None
    # its own ISO text is _iso's of its seconds: a UTC time of whole seconds
    return int(moment.timestamp()) if moment.isoformat() == iso else None


def _packed_times(times: dict[str, Any]) -> dict[str, Any] | None:
    """``times`` with its times in whole UTC seconds as integers, for format 2; None
    when a time slot holds something else than text or null (format 1 keeps it)."""
    packed = dict(times)
    for slot in ("at",) if "at" in times else ():
        value = times[slot]
        if value is not None and type(value) is not str:
            return None
        packed[slot] = _seconds(value) or value
    if times.get("f"):
        others = {}
        for path, pair in times["f"].items():
            if pair is not None and len(pair) == 2:
                if pair[1] is not None and type(pair[1]) is not str:
                    return None
                pair = [pair[0], _seconds(pair[1]) or pair[1]]
            elif pair is not None:
                return None
            others[path] = pair
        packed["f"] = others
    return packed


def _unpacked_times(times: dict[str, Any]) -> dict[str, Any]:
    if type(times.get("at")) is int:
        times["at"] = _iso(times["at"])
    for pair in (times.get("f") or {}).values():
        if pair is not None and type(pair[1]) is int:
            pair[1] = _iso(pair[1])
    return times


# Compressors primed with a dictionary, never used themselves: each record deflates
# with a copy of one (the same state as a new one, without loading the dictionary
# again). Format 3 at level 5: as small as 6 with _SHAPES, and as fast as format 2 was.
_PRIMED = zlib.compressobj(6, zlib.DEFLATED, _WINDOW, _MEM_LEVEL, zdict=_DICTIONARY)
_PRIMED_SHAPES = zlib.compressobj(5, zlib.DEFLATED, _WINDOW, _MEM_LEVEL, zdict=_SHAPES)
_DICTIONARIES = {_DEFLATED: _DICTIONARY, _TIMED: _DICTIONARY, _SHAPED: _SHAPES}


def encode(data: dict[str, Any], field_times: dict[str, Any]) -> bytes:
    """The stored form of a record's memory; :func:`decode` gives both back equal.
    Equal inputs give equal bytes."""
    packed = _packed_times(field_times)
    if packed is None:
        packer, head = _PRIMED.copy(), _DEFLATED
    else:
        packer, head = _PRIMED_SHAPES.copy(), _SHAPED
    text = dumps([field_times if packed is None else packed, data]).encode()
    return bytes((head,)) + packer.compress(text) + packer.flush()


def decode(stored: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data, field_times) of a value :func:`encode` made."""
    stored = bytes(stored)   # some drivers hand out a memoryview
    dictionary = _DICTIONARIES.get(stored[0]) if stored else None
    if dictionary is None:
        raise ValueError(f"unknown stored hub memory format {stored[:1]!r}: the state "
                         "store was written by a newer crm2erp")
    unpacker = zlib.decompressobj(_WINDOW, zdict=dictionary)
    field_times, data = loads((unpacker.decompress(stored[1:]) + unpacker.flush()).decode())
    return data, field_times if stored[0] == _DEFLATED else _unpacked_times(field_times)

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
"""

from __future__ import annotations

__all__ = ["flatten", "Pair", "FieldMemory", "compact_state"]

from typing import Any

from crm2erp.jsonutil import short_hash
from crm2erp.store.records import CanonicalState

Pair = tuple[str | None, str | None]   # (system, ISO time) of a field's last change
NOBODY: Pair = (None, None)
VERSION = 3


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> dotted paths; lists and scalars are leaves."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    flat: dict[str, Any] = {}
    _flatten_into(data, f"{prefix}." if prefix else "", flat)
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

"""The hub's memory of each record: what changed, who owns it, and echoes.

The state store keeps the last canonical state of every synced record and,
per field, which system last changed it and when. With it, each batch
record is compared field by field with what the hub already knows:

* fields the source did not change are not news. A record with no news is a
  write of ours coming back (an **echo**), or a re-read through the lookback,
  and it is skipped, so a two-way flow settles after one round;
* a field changed by a system that does not own it (``ownership:`` in the
  flow) is a **conflict**. It is logged and settled by the flow's
  ``conflict_rule``: the owner's value stays (``ownership``), or the later
  edit wins (``last_modified``, by the record's ``updated_at``).
"""

from __future__ import annotations

__all__ = ["flatten", "deep_merge", "set_path", "pop_path", "owner_of", "Settlement",
           "field_memory", "settle", "next_state", "learned"]

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from crm2erp.jsonutil import payload_hash, short_hash
from crm2erp.store import CanonicalState, ConflictRecord

IGNORED = {"id", "updated_at"}   # identity and change time are not record content


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> dotted paths; lists and scalars are leaves."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


def _copy_dicts(value: Any) -> Any:
    return {k: _copy_dicts(v) for k, v in value.items()} if isinstance(value, dict) else value


def deep_merge(base: dict, update: dict) -> dict:
    """``base`` with ``update`` laid over it, recursing into dicts; inputs untouched.

    Every dict of the result is new (so :func:`set_path` on it changes neither
    input); other values are shared, not copied: nothing changes them in place.
    """
    merged = _copy_dicts(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = _copy_dicts(value)
    return merged


def set_path(data: dict, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for name in parents:
        if not isinstance(data.get(name), dict):
            data[name] = {}
        data = data[name]
    data[leaf] = value


def pop_path(data: dict, path: str) -> None:
    *parents, leaf = path.split(".")
    node: Any = data
    for name in parents:
        node = node.get(name)
        if not isinstance(node, dict):
            return
    node.pop(leaf, None)


def owner_of(path: str, ownership: dict[str, str]) -> str | None:
    """The owning system of a field: the longest ownership entry that covers it."""
    best = None
    for owned, system in ownership.items():
        if path == owned or path.startswith(owned + "."):
            if best is None or len(owned) > len(best[0]):
                best = (owned, system)
    return best[1] if best else None


# One field's memory: who changed it last, when (ISO text), and per system the hash
# of the value that system last sent.
Memory = tuple[str | None, str | None, dict[str, str]]
_BLANK: Memory = (None, None, {})


@dataclass
class Settlement:
    """What the hub makes of one incoming record."""

    accepted: list[str] = field(default_factory=list)     # fields with news that stand
    reverts: dict[str, Any] = field(default_factory=dict)  # path -> value that stays
    conflicts: list[ConflictRecord] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)     # path -> hash this source sent
    memory: dict[str, Memory] = field(default_factory=dict)  # the state's, read once
    memory_of: CanonicalState | None = field(default=None, repr=False)

    def memory_for(self, state: CanonicalState | None) -> dict[str, Memory]:
        """``field_memory(state)``, read once per settlement."""
        if state is not self.memory_of or (state is not None and not self.memory):
            self.memory, self.memory_of = field_memory(state), state
        return self.memory

    @property
    def has_news(self) -> bool:
        return bool(self.accepted)


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return None


def field_memory(state: CanonicalState | None) -> dict[str, Memory]:
    """Path -> (by, at, seen) from a state's ``field_times``, in any stored format.

    The compact format (``{"v": 2, "w": [[by, at], ...], "f": {path: [w, seen]}}``:
    each (system, time) pair once per record, 16-digit hashes) is what
    :func:`next_state` writes; records remembered earlier carry
    ``{path: {"by", "at", "seen"}}`` (64-digit sha256 hashes) or, the first
    format, ``{path: [system, time]}``. They are read as they are and written
    compact the next time they change.
    """
    times = state.field_times if state else None
    if not times:
        return {}
    if times.get("v") == 2:
        who = times["w"]
        return {path: (*(who[w] if w is not None else (None, None)), seen)
                for path, (w, seen) in times["f"].items()}
    out: dict[str, Memory] = {}
    for path, raw in times.items():
        if isinstance(raw, dict):
            out[path] = (raw.get("by"), raw.get("at"), raw.get("seen") or {})
        elif isinstance(raw, list):
            out[path] = (raw[0] if raw else None, raw[1] if len(raw) > 1 else None, {})
    return out


def _same_value(seen: str | None, value: Any, fresh: str) -> bool:
    """Whether ``seen`` (a stored hash) is the hash of ``value`` (``fresh`` its short
    hash); hashes from before the compact format are sha256."""
    if seen is None:
        return False
    return seen == fresh if len(seen) == len(fresh) else seen == payload_hash(value)


def settle(*, entity: str, canonical_id: str, system: str, mapped_paths: list[str],
           new: dict[str, Any], state: CanonicalState | None, ownership: dict[str, str],
           rule: str, changed_at: dt.datetime) -> Settlement:
    """Compare the incoming canonical record (``new``, JSON form) with ``state``.

    A field is news only when this source changed it since it last sent it:
    a source still sending its old value (it has not caught up with another
    system's edit, or a mapping sends a constant) is not an edit, so neither
    a conflict nor an overwrite.
    """
    result = Settlement()
    paths = [p for p in mapped_paths if p.partition(".")[0] not in IGNORED]
    new_flat = flatten(new)
    result.seen = {p: short_hash(new_flat.get(p)) for p in paths}
    if state is None:
        result.accepted = paths
        return result
    memory = result.memory_for(state)
    old = flatten(state.data)
    for path in paths:
        incoming, stored = new_flat.get(path), old.get(path)
        last_system, last_at, seen = memory.get(path, _BLANK)
        if incoming == stored or _same_value(seen.get(system), incoming, result.seen[path]):
            continue                     # nothing new from this source
        owner = owner_of(path, ownership)
        last_time = _time(last_at)
        if owner is not None and owner != system:
            if rule == "last_modified" and (last_time or changed_at) < changed_at:
                winner = system
            else:
                winner = owner
        elif rule == "last_modified" and last_system not in (None, system) \
                and last_time is not None and last_time > changed_at:
            winner = last_system
        else:
            result.accepted.append(path)
            continue
        result.conflicts.append(ConflictRecord(
            entity, canonical_id, path, system, incoming, stored, winner,
            "ownership" if owner is not None and rule == "ownership" else rule))
        if winner == system:
            result.accepted.append(path)
        else:
            result.reverts[path] = stored
    return result


def next_state(*, entity: str, canonical_id: str, system: str, data: dict[str, Any],
               previous: CanonicalState | None, settlement: Settlement,
               changed_at: dt.datetime) -> CanonicalState:
    """The state to remember: the record, and per field who changed it and what
    each system last sent (in the compact format, see :func:`field_memory`)."""
    memory = settlement.memory_for(previous)
    accepted = set(settlement.accepted)
    mine = (system, changed_at.isoformat() if accepted else None)
    seen = settlement.seen
    content = {k: v for k, v in data.items() if k not in IGNORED}
    if not memory:   # a record new to the hub: what the loop below gives, without it
        fields = {path: [0 if path in accepted else None, {system: sent}]
                  for path, sent in seen.items()}
        mine_used = any(index == 0 for index, _ in fields.values())
        return CanonicalState(entity, canonical_id, content,
                              {"v": 2, "w": [list(mine)] if mine_used else [], "f": fields})
    who: dict[tuple[str | None, str | None], int] = {}
    fields = {}
    # the stored paths in their order, then the new ones: the same memory gives the
    # same text, so an unchanged record is recognised and not rewritten
    for path in (*memory, *(p for p in seen if p not in memory)):
        by, at, sent = memory.get(path, _BLANK)
        if path in seen:
            if sent.get(system) != seen[path]:
                sent = {**sent, system: seen[path]}
            if path in accepted:
                by, at = mine
        index = None if by is None and at is None else who.setdefault((by, at), len(who))
        fields[path] = [index, sent]
    return CanonicalState(entity, canonical_id, content,
                          {"v": 2, "w": [list(pair) for pair in who], "f": fields})


def learned(state: CanonicalState | None, settlement: Settlement, system: str) -> bool:
    """Whether the source sent values the memory does not have yet (worth saving
    even when the record has no news)."""
    memory = settlement.memory_for(state)
    return any(memory.get(p, _BLANK)[2].get(system) != h for p, h in settlement.seen.items())

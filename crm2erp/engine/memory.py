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
           "FieldMemory", "field_memory", "settle", "next_state", "learned"]

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from crm2erp.jsonutil import payload_hash, short_hash
from crm2erp.store import CanonicalState, ConflictRecord
from crm2erp.store.fieldmemory import NOBODY, FieldMemory, compact_state, flatten

IGNORED = {"id", "updated_at"}   # identity and change time are not record content


def _copy_dicts(value: dict) -> dict:
    return {k: _copy_dicts(v) if isinstance(v, dict) else v for k, v in value.items()}


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
            merged[key] = _copy_dicts(value) if isinstance(value, dict) else value
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
# of the value that system last sent, where that is not the stored value.
Memory = tuple[str | None, str | None, dict[str, str]]


def field_memory(state: CanonicalState | None) -> dict[str, Memory]:
    """Path -> (by, at, seen) of every field the memory knows something of."""
    memory = FieldMemory(state)
    pairs = memory.pairs()
    return {path: (*pairs.get(path, NOBODY), dict(memory.sent.get(path, {})))
            for path in (*pairs, *(p for p in memory.sent if p not in pairs))}


@dataclass
class Settlement:
    """What the hub makes of one incoming record."""

    accepted: list[str] = field(default_factory=list)     # fields with news that stand
    reverts: dict[str, Any] = field(default_factory=dict)  # path -> value that stays
    conflicts: list[ConflictRecord] = field(default_factory=list)
    sent_values: dict[str, Any] = field(default_factory=dict)  # path -> what this source sent
    memory: FieldMemory | None = field(default=None, repr=False)  # the state's, read once
    memory_of: CanonicalState | None = field(default=None, repr=False)
    hashes: dict[str, str] | None = field(default=None, repr=False)

    @property
    def seen(self) -> dict[str, str]:
        """Path -> short hash of what this source sent, hashed on first use (a new
        record's memory needs no hash of a value it stores as sent)."""
        if self.hashes is None:
            self.hashes = {path: short_hash(value) for path, value in self.sent_values.items()}
        return self.hashes

    def memory_for(self, state: CanonicalState | None) -> FieldMemory:
        """``FieldMemory(state)``, read once per settlement."""
        if self.memory is None or state is not self.memory_of:
            self.memory, self.memory_of = FieldMemory(state), state
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


def _same_value(seen: str | None, value: Any, fresh: str) -> bool:
    """Whether ``seen`` (a stored hash) is the hash of ``value`` (``fresh`` its short
    hash); hashes from before the compact formats are sha256."""
    if seen is None:
        return False
    if len(seen) == len(fresh):
        return seen == fresh
    return seen[:16] == payload_hash(value)   # payload_hash: sha256's first 64 bits


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
    result.sent_values = {path: new_flat.get(path) for path in paths}
    if state is None:
        result.accepted = paths
        return result
    memory = result.memory_for(state)
    old = memory.flat
    for path in paths:
        incoming, stored = new_flat.get(path), old.get(path)
        if incoming == stored or _same_value(memory.last_sent(path, system), incoming,
                                             result.seen[path]):
            continue                     # nothing new from this source
        last_system, last_at = memory.pair(path)
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
    """The state to remember: the record, who changed which field last and what each
    system last sent (stored compactly: :mod:`crm2erp.store.fieldmemory`).

    A field's last changer keeps no hash of the stored value it sent; when the
    stored value moves on without it, the hash of what it sent is written out."""
    memory = settlement.memory_for(previous)
    content = dict(data)
    for name in IGNORED:
        content.pop(name, None)
    before = memory.pairs()
    pairs = dict(before)
    if settlement.accepted:
        mine = (system, changed_at.isoformat())
        for path in settlement.accepted:
            pairs[path] = mine
    sent = {path: dict(systems) for path, systems in memory.sent.items()}
    if before:
        now = flatten(content)
        for path, (by, _) in before.items():
            if by is not None and memory.sent_by(path, by) is None \
                    and now.get(path) != memory.flat.get(path):
                sent.setdefault(path, {})[by] = short_hash(memory.flat.get(path))
    return compact_state(entity, canonical_id, content, pairs, sent,
                         (system, settlement.sent_values))


def learned(state: CanonicalState | None, settlement: Settlement, system: str) -> bool:
    """Whether the source sent values the memory does not have yet (worth saving
    even when the record has no news)."""
    memory = settlement.memory_for(state)
    return any(memory.last_sent(path, system) != hashed
               for path, hashed in settlement.seen.items())

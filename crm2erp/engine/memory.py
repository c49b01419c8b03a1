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
           "settle", "next_state", "learned"]

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from crm2erp.jsonutil import payload_hash
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


def deep_merge(base: dict, update: dict) -> dict:
    """``base`` with ``update`` laid over it, recursing into dicts; inputs untouched."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
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
    for name in parents:
        data = data.get(name)
        if not isinstance(data, dict):
            return
    data.pop(leaf, None)


def owner_of(path: str, ownership: dict[str, str]) -> str | None:
    """The owning system of a field: the longest ownership entry that covers it."""
    best = None
    for owned, system in ownership.items():
        if path == owned or path.startswith(owned + "."):
            if best is None or len(owned) > len(best[0]):
                best = (owned, system)
    return best[1] if best else None


@dataclass
class Settlement:
    """What the hub makes of one incoming record."""

    accepted: list[str] = field(default_factory=list)     # fields with news that stand
    reverts: dict[str, Any] = field(default_factory=dict)  # path -> value that stays
    conflicts: list[ConflictRecord] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)     # path -> hash this source sent

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


def _entry(state: CanonicalState | None, path: str) -> dict[str, Any]:
    """A field's memory: who changed it last (``by``), when (``at``), and the hash of
    the value each system last sent (``seen``)."""
    raw = state.field_times.get(path) if state else None
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, list):          # the first format: [system, time]
        return {"by": raw[0], "at": raw[1] if len(raw) > 1 else None, "seen": {}}
    return {"by": None, "at": None, "seen": {}}


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
    paths = [p for p in mapped_paths if p.split(".")[0] not in IGNORED]
    new_flat = flatten(new)
    result.seen = {p: payload_hash(new_flat.get(p)) for p in paths}
    if state is None:
        result.accepted = paths
        return result
    old = flatten(state.data)
    for path in paths:
        incoming, stored = new_flat.get(path), old.get(path)
        memory = _entry(state, path)
        if incoming == stored or memory["seen"].get(system) == result.seen[path]:
            continue                     # nothing new from this source
        owner = owner_of(path, ownership)
        last_system, last_time = memory["by"], _time(memory["at"])
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
    each system last sent."""
    times: dict[str, Any] = dict(previous.field_times) if previous else {}
    for path, seen in settlement.seen.items():
        entry = _entry(previous, path)
        entry = {**entry, "seen": {**entry["seen"], system: seen}}
        if path in settlement.accepted:
            entry.update(by=system, at=changed_at.isoformat())
        times[path] = entry
    content = {k: v for k, v in data.items() if k not in IGNORED}
    return CanonicalState(entity, canonical_id, content, times)


def learned(state: CanonicalState | None, settlement: Settlement, system: str) -> bool:
    """Whether the source sent values the memory does not have yet (worth saving
    even when the record has no news)."""
    return any(_entry(state, p)["seen"].get(system) != h for p, h in settlement.seen.items())

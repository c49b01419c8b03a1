"""The load steps: canonical records through the stages and the outbound map
into the target, and source deletes applied to it.

:func:`load` runs a batch's canonical items through the batch stages
(quality gate, dedupe), :func:`outbound` (the target's row and its hash),
the hash check against the last write (:func:`changed`) and the key
collision check (:func:`one_write_per_target`), and hands what is left to
the run's write sink. :func:`delete` finds what a batch's source deletes
mean for the target. Every refusal is a dead letter in the batch's commit.

The steps take the flow's runner (:class:`crm2erp.engine.runner.FlowRunner`).
"""

from __future__ import annotations

__all__ = ["load", "outbound", "changed", "one_write_per_target", "target_keys_taken",
           "delete", "plain"]

import datetime as dt
import enum
from collections import Counter
from decimal import Decimal
from typing import Any

from crm2erp.contract import DeleteMode
from crm2erp.engine.batch import DELETED_MARK, hold, record_key
from crm2erp.engine.inbound import remember
from crm2erp.engine.memory import pop_path
from crm2erp.engine.stages import Item
from crm2erp.errors import ParentMissingError, RecordError
from crm2erp.jsonutil import payload_hash
from crm2erp.store import BatchCommit

#: Value types with nothing inside to convert (an Enum member is none of them: a
#: ``StrEnum`` member's type is its enum class, not ``str``).
_LEAVES = frozenset({str, int, float, bool, type(None), Decimal, dt.datetime, dt.date})


def plain(value: Any) -> Any:
    """Enum members become their values, so targets see plain strings."""
    if isinstance(value, dict):
        return {k: v if type(v) in _LEAVES else plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) in _LEAVES else plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def load(runner, items: list[Item], counts: Counter, commit: BatchCommit) -> list[Item]:
    """Canonical items through the stages, the outbound map and the hash check into
    the run's sink (the target, or in a dry run the list of changes). Returns the
    items that reached the target stage, written or unchanged."""
    for stage in runner.stages:
        for rejection in stage.process(items, runner.context):
            hold(commit, counts, rejection.stage, rejection.item.source_key,
                 rejection.reason, rejection.item.source_row)
        rejected = {d.source_key for d in commit.dead_letters}
        items = [i for i in items if i.source_key not in rejected]
    items = outbound(runner, items, counts, commit)
    fresh = changed(runner, items, counts, commit) if runner.skip_unchanged else items
    to_write = one_write_per_target(runner, fresh, counts, commit)
    runner.sink.write(to_write, counts, commit)
    return items


def outbound(runner, items: list[Item], counts: Counter, commit: BatchCommit) -> list[Item]:
    """Map each canonical record to the target's row and hash it."""
    ready = []
    for item in items:
        data = plain(item.record.model_dump(mode="python"))
        data["id"] = item.canonical_id
        try:
            item.target_row = runner.outbound.apply(data, runner.resolver)
            for path in runner.target_owned:
                pop_path(item.target_row, path)
        except ParentMissingError as exc:
            hold(commit, counts, "parked", item.source_key, str(exc), item.source_row)
            continue
        except RecordError as exc:
            hold(commit, counts, exc.stage, item.source_key, str(exc), item.source_row)
            continue
        item.target_key = record_key(item.target_row, runner.target_stream.key)
        item.hash = payload_hash(item.target_row)
        ready.append(item)
    return ready


def changed(runner, items: list[Item], counts: Counter, commit: BatchCommit) -> list[Item]:
    """Drop the records whose payload equals the one last written."""
    last = runner.store.xref_by_canonical(runner.flow.entity, runner.target_system,
                                          [i.canonical_id for i in items])
    kept = []
    for item in items:
        entry = last.get(item.canonical_id)
        if entry is not None and entry.payload_hash == item.hash:
            item.target_id = entry.external_id
            counts["unchanged"] += 1
            commit.resolved_keys.append(item.source_key)
            commit.xref.append(runner.source_xref(item))
            remember(runner, item, commit)
        else:
            kept.append(item)
    return kept


def one_write_per_target(runner, items: list[Item], counts: Counter,
                         commit: BatchCommit) -> list[Item]:
    """At most one write per target record, and never one over another record's.

    Records the dedupe stage merged share a canonical id: the last one is
    written, the others count as unchanged. Two *different* canonical records
    that map to the same target key (a target keyed on a business field such
    as the e-mail) are a key collision: the second is a dead letter naming both
    source keys, in the batch and against what earlier runs wrote.
    """
    last = {item.canonical_id: item for item in items}
    for item in items:
        if last[item.canonical_id] is not item:
            counts["unchanged"] += 1
            commit.resolved_keys.append(item.source_key)
            commit.xref.append(runner.source_xref(item))
    items = [item for item in items if last[item.canonical_id] is item]
    # an empty key is one the target assigns on create: it cannot collide
    keyed = [item for item in items if (item.target_key or "").strip("|")]
    owner = {item.target_key: item for item in reversed(keyed)}   # the first one
    taken = target_keys_taken(runner, keyed)
    kept = []
    for item in items:
        first = owner.get(item.target_key, item)
        other = taken.get(item.target_key or "") or (
            None if first is item else (first.canonical_id, first.source_key))
        if other is None or other[0] == item.canonical_id:
            kept.append(item)
            continue
        hold(commit, counts, "collision", item.source_key,
             f"{runner.target_system!r} key {item.target_key!r} already belongs to "
             f"{runner.source_system!r} record {other[1]!r}; {item.source_key!r} maps "
             "to the same key. Writing it would overwrite that record: fix the data "
             "or the key mapping (or let the dedupe stage merge the two)",
             item.source_row)
    return kept


def target_keys_taken(runner, items: list[Item]) -> dict[str, tuple[str, str]]:
    """Target key -> (canonical id, source key) of the record earlier runs wrote
    there, for the keys of ``items`` that exist in the target already."""
    if not items or runner.key_is_canonical_id:
        return {}
    flow, store = runner.flow, runner.store
    try:
        current = runner.target.lookup(flow.target.stream,
                                       [item.target_key for item in items])
    except NotImplementedError:
        return {}
    id_field = runner.target_stream.id_field
    ids = {key: str(row.get(id_field) if id_field else key) for key, row in current.items()}
    owners = store.canonical_ids(flow.entity, runner.target_system, ids.values())
    sources = store.external_ids(flow.entity, runner.source_system, set(owners.values()))
    return {key: (owners[target_id], sources.get(owners[target_id], "?"))
            for key, target_id in ids.items() if target_id in owners}


def delete(runner, source_keys: list[str], counts: Counter, commit: BatchCommit) -> None:
    """Apply source deletes to the target, in the batch's commit.

    A deleted record's open dead letter is closed (a retry must not bring it
    back). A delete the target refuses, or one that finds no record there
    ("not found"), is a dead letter of stage ``delete``, retried by ``dlq
    retry``. An applied delete marks the target's cross-reference entry, so
    the same delete read again (lookback, retry) is not sent twice.
    """
    flow, store = runner.flow, runner.store
    commit.resolved_keys.extend(source_keys)
    mode = DeleteMode(flow.delete_policy)
    if mode is DeleteMode.IGNORE:
        return
    canonical = store.canonical_ids(flow.entity, runner.source_system, source_keys)
    targets = store.xref_by_canonical(flow.entity, runner.target_system,
                                      list(canonical.values()))
    applied = f"{DELETED_MARK}:{mode.value}"
    pending = [(key, targets[canonical[key]].external_id) for key in source_keys
               if canonical.get(key) in targets
               and targets[canonical[key]].payload_hash != applied]
    if not pending:
        return
    runner.sink.delete(pending, mode, {key: canonical[key] for key, _ in pending}, counts,
                       commit)

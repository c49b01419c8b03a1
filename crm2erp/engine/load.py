"""The load steps: canonical records through the stages and the outbound map
into the target, and source deletes applied to it.

:func:`load` runs a batch's canonical items through the batch stages
(quality gate, dedupe), :func:`outbound` (the target's row and its hash),
the hash check against the last write (:func:`changed`) and the key
collision check (:func:`one_write_per_target`), and writes what is left.
:func:`delete` finds what a batch's source deletes mean for the target and
applies them. :func:`write` upserts, :func:`write_back` puts the target's id
on the source record, :func:`describe` (a dry run) lists what would change.
Every refusal is a dead letter in the batch's commit.

The steps take the flow's runner (:class:`crm2erp.engine.runner.FlowRunner`).
"""

from __future__ import annotations

__all__ = ["load", "outbound", "changed", "one_write_per_target", "target_keys_taken",
           "delete", "write", "write_back", "describe", "plain"]

import enum
import logging
from collections import Counter
from typing import Any

from crm2erp.connectors.base import DeleteMode, WriteAction
from crm2erp.engine.batch import DELETED_MARK, Change, hold, record_key
from crm2erp.engine.inbound import remember
from crm2erp.engine.memory import pop_path
from crm2erp.engine.stages import Item
from crm2erp.errors import ParentMissingError, RecordError
from crm2erp.jsonutil import payload_hash, to_jsonable
from crm2erp.mapping.paths import get_path
from crm2erp.store import BatchCommit, XrefUpsert

log = logging.getLogger(__name__)


def plain(value: Any) -> Any:
    """Enum members become their values, so targets see plain strings."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def load(runner, items: list[Item], counts: Counter, commit: BatchCommit,
         result, dry_run: bool) -> list[Item]:
    """Canonical items through the stages, the outbound map and the hash check into
    the target (or, in a dry run, into the list of changes). Returns the items
    that reached the target stage, written or unchanged."""
    for stage in runner.stages:
        for rejection in stage.process(items, runner.context):
            hold(commit, counts, rejection.stage, rejection.item.source_key,
                 rejection.reason, rejection.item.source_row)
        rejected = {d.source_key for d in commit.dead_letters}
        items = [i for i in items if i.source_key not in rejected]
    items = outbound(runner, items, counts, commit)
    to_write = one_write_per_target(runner, changed(runner, items, counts, commit), counts,
                                    commit)
    if dry_run:
        describe(runner, to_write, result)
    elif to_write:
        write(runner, to_write, counts, commit)
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
    keyed = [item for item in items if item.target_key.strip("|")]
    owner = {item.target_key: item for item in reversed(keyed)}   # the first one
    taken = target_keys_taken(runner, keyed)
    kept = []
    for item in items:
        first = owner.get(item.target_key, item)
        other = taken.get(item.target_key) or (
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


def delete(runner, source_keys: list[str], counts: Counter, commit: BatchCommit,
           result, dry_run: bool) -> None:
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
    if dry_run:
        result.changes.extend(Change(mode.value, target_id) for _, target_id in pending)
        return
    outcomes = runner.target.delete(flow.target.stream,
                                    [target_id for _, target_id in pending], mode)
    for (source_key, target_id), outcome in zip(pending, outcomes, strict=True):
        if not outcome.ok:
            commit.resolved_keys[:] = [k for k in commit.resolved_keys if k != source_key]
            hold(commit, counts, "delete", source_key,
                 f"deleted in {runner.source_system!r}, but the {mode.value} of "
                 f"{runner.target_system!r} record {target_id} failed: "
                 f"{outcome.error or 'refused by the target'}",
                 {DELETED_MARK: source_key})
        elif outcome.action is WriteAction.UNCHANGED:
            log.info("flow %s: %s record %s for deleted %s was already gone",
                     flow.flow, runner.target_system, target_id, source_key)
        else:
            counts["deleted"] += 1
            commit.xref.append(XrefUpsert(flow.entity, runner.target_system, target_id,
                                          canonical[source_key], applied))


def write(runner, items: list[Item], counts: Counter, commit: BatchCommit) -> None:
    results = runner.target.upsert(runner.flow.target.stream, [i.target_row for i in items])
    for item, outcome in zip(items, results, strict=True):
        if not outcome.ok:
            hold(commit, counts, "write", item.source_key,
                 outcome.error or "refused by the target", item.source_row)
            continue
        counts[outcome.action.value] += 1
        target_id = item.target_id = str(outcome.target_id or outcome.key)
        commit.resolved_keys.append(item.source_key)
        commit.xref.append(runner.source_xref(item))
        commit.xref.append(XrefUpsert(runner.flow.entity, runner.target_system, target_id,
                                      item.canonical_id, item.hash))
        remember(runner, item, commit)
        runner.resolver.remember(runner.flow.entity, runner.target_system, target_id,
                                 item.canonical_id)


def write_back(runner, items: list[Item], counts: Counter, commit: BatchCommit) -> None:
    """Write the target's id onto the source record where it is missing or stale.

    Decided by comparing the source row's field with the target id, so it
    is idempotent and heals itself: a write-back that failed is tried
    again the next time the record is read.
    """
    spec = runner.flow.write_back
    key_fields = runner.write_back.stream(spec.stream).key
    pending = [i for i in items if i.target_id is not None   # field: a dotted path
               and str(get_path(i.source_row, spec.field) or "") != i.target_id]
    if not pending:
        return
    rows = [{**{k: i.source_row.get(k) for k in key_fields}, spec.field: i.target_id}
            for i in pending]
    outcomes = runner.write_back.update(spec.stream, rows)
    for item, outcome in zip(pending, outcomes, strict=True):
        if outcome.ok:
            counts["written_back"] += 1
            continue
        if item.source_key in commit.resolved_keys:
            commit.resolved_keys.remove(item.source_key)
        hold(commit, counts, "write_back", item.source_key,
             f"written to {runner.target_system!r} as {item.target_id}, but the "
             f"write-back to {spec.connection}.{spec.stream}.{spec.field} failed: "
             f"{outcome.error}", item.source_row)


def describe(runner, items: list[Item], result) -> None:
    """Dry run: what would be written, with the fields that would change."""
    if not items:
        return
    current = runner.target.lookup(runner.flow.target.stream, [i.target_key for i in items])
    for item in items:
        before = current.get(item.target_key)
        if before is None:
            result.changes.append(Change("create", item.target_key,
                                         to_jsonable(item.target_row)))
            result.counts["created"] += 1
            continue
        diff = {name: to_jsonable(value) for name, value in item.target_row.items()
                if to_jsonable(before.get(name)) != to_jsonable(value)}
        action = "update" if diff else "unchanged"
        result.counts["updated" if diff else "unchanged"] += 1
        result.changes.append(Change(action, item.target_key, diff))

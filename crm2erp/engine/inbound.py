"""The inbound step: source rows become validated canonical records.

:func:`canonicalize` maps each row inbound, gives it its canonical id, merges
it with what the hub remembers of the record (:mod:`crm2erp.engine.memory`:
field ownership, conflict rule) and validates the result against the
canonical model. A row that fails is a dead letter of the batch; a row
without news (an echo of our own write, a lookback re-read) is counted
unchanged and goes no further. :func:`remember` records the canonical state
once the record is in the target.

The steps take the flow's runner (:class:`crm2erp.engine.runner.FlowRunner`):
its flow, mappings, connectors, store and resolver.
"""

from __future__ import annotations

__all__ = ["canonicalize", "already_synced", "merge", "validate", "validation_message", "remember"]

import datetime as dt
import logging
from collections import Counter

from pydantic import ValidationError

from crm2erp.contract import Row
from crm2erp.engine.batch import hold, record_key
from crm2erp.engine.memory import (
    Settlement,
    deep_merge,
    flatten,
    learned,
    next_state,
    set_path,
    settle,
)
from crm2erp.engine.stages import Item
from crm2erp.errors import RecordError
from crm2erp.jsonutil import payload_hash
from crm2erp.store import BatchCommit

log = logging.getLogger(__name__)


def canonicalize(runner, rows: list[Row], counts: Counter, commit: BatchCommit, *,
                 skip_synced: bool = False) -> list[Item]:
    """Map inbound, give the canonical id, merge with what the hub knows, validate.

    Failures are dead letters; records without news (echoes of our own
    writes, lookback re-reads) are counted unchanged and go no further.
    ``skip_synced`` (a sync run's batches) also counts unchanged, before mapping,
    the rows that went through the flow already as they are (:func:`already_synced`);
    callers that look at every record (reconcile, quality checks, dedupe) leave it off.
    """
    flow = runner.flow
    key_fields = runner.source_stream.identity
    keys = [record_key(r, key_fields) for r in rows]
    if skip_synced:
        unchanged, hashes = already_synced(runner, rows, keys)
    else:
        unchanged, hashes = [False] * len(rows), {}
        runner.resolver.prefetch(flow.entity, runner.source_system, keys)
    mapped: dict[str, tuple[Row, dict, str]] = {}
    for row, source_key, same in zip(rows, keys, unchanged, strict=True):
        if not source_key.strip("|").strip():
            hold(commit, counts, "read", f"(no key) {payload_hash(row)[:12]}",
                 f"the record has an empty key ({', '.join(key_fields)}); "
                 "it cannot be identified, so it is not loaded", row)
            continue
        if same:   # this very row went through already
            counts["unchanged"] += 1
            mapped.pop(source_key, None)      # a later version wins
            continue
        try:
            if not runner.inbound.matches(row):
                counts["skipped"] += 1
                commit.resolved_keys.append(source_key)
                continue
            data = runner.inbound.apply(row, runner.resolver)
            canonical_id = runner.resolver.to_canonical(flow.entity, runner.source_system,
                                                        source_key)
        except RecordError as exc:   # ParentMissingError included
            hold(commit, counts, exc.stage, source_key, str(exc), row)
            continue
        mapped[source_key] = (row, data, canonical_id)   # a later version wins
    states = runner.store.canonical_states(flow.entity, [m[2] for m in mapped.values()])
    items = []
    for source_key, (row, data, canonical_id) in mapped.items():
        state = states.get(canonical_id)
        try:
            item = merge(runner, source_key, row, data, canonical_id, state, commit)
        except RecordError as exc:
            hold(commit, counts, exc.stage, source_key, str(exc), row)
            continue
        if source_key in hashes:
            item.notes["source_hash"] = hashes[source_key]
        if state is not None and not item.notes["settlement"].has_news \
                and runner.mode not in ("full_refresh", "retry"):
            counts["unchanged"] += 1
            commit.resolved_keys.append(source_key)
            commit.xref.append(runner.source_xref(item))
            if learned(state, item.notes["settlement"], runner.source_system):
                remember(runner, item, commit)
            continue
        items.append(item)
    return items


def already_synced(runner, rows: list[Row], keys: list[str]
                   ) -> tuple[list[bool], dict[str, str]]:
    """Whether each row went through the flow already as it is (its hash equals the one
    stored when its record last went through), and key -> hash of the rows hashed.

    Any sync run but a retry skips such rows (a retry, or a re-sync, writes the record
    whatever it holds), unless the key has an active dead letter (a failed write-back
    is tried again, a parked record waits for its parent). The batch's xref entries,
    read here in one query with the dead letters that hold them, also give the
    resolver the canonical ids of the keys that go on to be mapped."""
    entity, system = runner.flow.entity, runner.source_system
    if runner.mode == "retry" or not runner.skip_unchanged:
        runner.resolver.prefetch(entity, system, keys)
        return [False] * len(rows), {}
    entries = runner.store.sync_hashes(entity, system, runner.flow.flow, keys)
    unchanged: list[bool] = []
    hashes: dict[str, str] = {}
    for row, key in zip(rows, keys, strict=True):
        entry = entries.get(key)
        if entry is None or not entry[1] or entry[2]:   # no hash kept, or held
            unchanged.append(False)
            continue
        row_hash = hashes[key] = runner.source_hash(row)
        unchanged.append(row_hash == entry[1])
    todo = [key for key, same in zip(keys, unchanged, strict=True) if not same]
    runner.resolver.prefetch(entity, system, todo,
                             {key: entries[key][0] for key in todo if key in entries})
    return unchanged, hashes


def merge(runner, source_key: str, row: Row, data: dict, canonical_id: str,
          state, commit: BatchCommit) -> Item:
    """One mapped row merged with the hub's state of its record, settled and validated."""
    flow = runner.flow
    # a record new to the hub has nothing to merge with: a shallow copy is the merge
    # (a new top-level dict for the id; the nested ones are only read, as deep_merge's are)
    merged = deep_merge(state.data, data) if state is not None else dict(data)
    merged["id"] = canonical_id
    record = validate(runner.model, merged)
    changed_at = record.updated_at or dt.datetime.now(dt.UTC)
    dumped = record.model_dump(mode="json")
    settlement = settle(
        entity=flow.entity, canonical_id=canonical_id, system=runner.source_system,
        mapped_paths=list(flatten(data)), new=dumped,
        state=state, ownership=flow.ownership, rule=flow.conflict_rule,
        changed_at=changed_at)
    if settlement.reverts:   # validated again only when a field was reverted
        for path, value in settlement.reverts.items():
            set_path(merged, path, value)
        record = validate(runner.model, merged)
        dumped = record.model_dump(mode="json")
    commit.conflicts.extend(settlement.conflicts)
    for conflict in settlement.conflicts:
        log.warning("flow %s: conflict on %s %s field %s: %s sent %r, %s kept %r",
                    flow.flow, conflict.entity, source_key, conflict.field,
                    conflict.system, conflict.incoming, conflict.winner, conflict.kept)
    item = Item(source_key, row, canonical_id, record)
    item.notes.update(settlement=settlement, state=state, changed_at=changed_at,
                      dumped=(record, dumped))
    return item


def validate(model, data: dict):
    """``data`` as an instance of the canonical ``model``; a RecordError of stage
    ``validate`` naming every field that failed."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message, field_name = validation_message(exc)
        raise RecordError(message, stage="validate", field=field_name) from None


def validation_message(exc: ValidationError) -> tuple[str, str | None]:
    """All of a validation error's problems in one line, and the first field's path."""
    first = exc.errors()[0]
    field_name = ".".join(str(p) for p in first["loc"]) or None
    messages = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(record)'}: {e['msg']}" for e in exc.errors())
    return messages, field_name


def remember(runner, item: Item, commit: BatchCommit) -> None:
    """The record is in the target: remember its canonical state."""
    record, dumped = item.notes.get("dumped", (None, None))
    if record is not item.record:     # a stage replaced it: dump the one it holds
        dumped = item.record.model_dump(mode="json")
    previous = item.notes.get("state")
    state = next_state(
        entity=runner.flow.entity, canonical_id=item.canonical_id,
        system=runner.source_system, data=dumped, previous=previous,
        settlement=item.notes.get("settlement") or Settlement(),
        changed_at=item.notes.get("changed_at") or dt.datetime.now(dt.UTC))
    if previous is not None and previous.canonical_id == state.canonical_id \
            and previous.data == state.data and previous.field_times == state.field_times:
        return      # the memory has all of it already (a --full-refresh of unchanged data)
    commit.canonical.append(state)

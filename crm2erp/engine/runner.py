"""The sync runner: read, map, validate, upsert, cross-reference, commit.

One batch at a time, so memory stays flat whatever the source size:

1. records parked earlier (their parent was missing) are tried again first;
2. the source is read from the watermark minus the lookback (``>=``);
3. each record is mapped inbound, validated against the canonical model,
   given its canonical id and mapped outbound; a record that fails goes to
   the dead letters with the reason and the batch goes on;
4. records whose outbound payload hash equals the one last written are
   skipped; the others are upserted in one call;
5. the xref, the dead letters, the counts and the new watermark are committed
   in one state-store transaction, after the target returned (= committed).

Killing the process at any point loses nothing: the watermark is behind every
record not yet committed, and the upsert by key makes the replay idempotent.
"""

from __future__ import annotations

__all__ = ["FlowRunner", "RunResult", "Change", "record_key", "replay"]

import datetime as dt
import enum
import logging
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from crm2erp.contract import Connector, Cursor, DeleteMode, Row, WriteAction
from crm2erp.engine.cursors import apply_lookback, later_cursor, parse_duration
from crm2erp.engine.memory import (
    Settlement,
    deep_merge,
    flatten,
    learned,
    next_state,
    owner_of,
    pop_path,
    set_path,
    settle,
)
from crm2erp.engine.resolver import StoreResolver
from crm2erp.engine.stages import Item, StageContext, build_stages, run_hooks, start_stages
from crm2erp.engine.status import run_status
from crm2erp.errors import ConfigError, Crm2ErpError, ParentMissingError, RecordError
from crm2erp.jsonutil import payload_hash, to_jsonable
from crm2erp.logcontext import next_batch, run_context
from crm2erp.mapping.compiler import CompiledMapping
from crm2erp.mapping.models import FlowSpec
from crm2erp.mapping.paths import get_path
from crm2erp.schemas import entity_model
from crm2erp.store import BatchCommit, NewDeadLetter, StateStore, XrefUpsert

log = logging.getLogger(__name__)

#: Payload of a dead letter for a delete that failed: the source key that was deleted.
DELETED_MARK = "_crm2erp_deleted"

COUNTERS = ("read", "created", "updated", "unchanged", "skipped", "failed", "parked",
            "deleted")


def record_key(row: Row, fields: Iterable[str]) -> str:
    return "|".join("" if row.get(f) is None else str(row.get(f)) for f in fields)


@dataclass
class Change:
    """A write the run made, or would make in a dry run."""

    action: str
    key: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    flow: str
    run_id: int | None
    mode: str
    partition: int | None = None
    status: str = "running"
    counts: Counter = field(default_factory=Counter)
    new_dead_letters: int = 0
    changes: list[Change] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    error: BaseException | None = None   # what stopped a failed run

    @property
    def changed(self) -> int:
        return self.counts["created"] + self.counts["updated"] + self.counts["deleted"]


def _slice_of(source_key: str, count: int) -> int:
    """The partition of a source key: a stable hash, the same in every process."""
    return zlib.crc32(source_key.encode()) % count


def _plain(value: Any) -> Any:
    """Enum members become their values, so targets see plain strings."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _validation_message(exc: ValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0]
    field_name = ".".join(str(p) for p in first["loc"]) or None
    messages = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(record)'}: {e['msg']}" for e in exc.errors())
    return messages, field_name


class FlowRunner:
    """Runs one flow of a project against its connections and the state store."""

    def __init__(self, flow: FlowSpec, *, inbound: CompiledMapping,
                 outbound: CompiledMapping, source: Connector, target: Connector,
                 store: StateStore, write_back: Connector | None = None,
                 progress: Callable[[RunResult], None] | None = None) -> None:
        self.flow = flow
        self.write_back = write_back
        self.inbound = inbound
        self.outbound = outbound
        self.source = source
        self.target = target
        self.store = store
        self.progress = progress
        self.model = entity_model(flow.entity)
        self.source_system = flow.source.connection
        self.target_system = flow.target.connection
        self.source_stream = source.stream(flow.source.stream)
        if flow.incremental is not None:   # the source parses and orders cursors so typed
            source.declare_cursor(flow.source.stream, flow.incremental.cursor_type)
        self.target_stream = target.stream(flow.target.stream)
        self.resolver = StoreResolver(store)
        self.stages = build_stages(flow, store)
        self.mode = "incremental"
        # target fields computed only from fields the target system owns: never sent
        self.target_owned = [
            target for target, sources in outbound.sources().items()
            if sources and all(owner_of(s, flow.ownership) == self.target_system
                               for s in sources)]
        # a target key computed from the canonical id alone cannot collide
        self.key_is_canonical_id = all(
            outbound.sources().get(k) == ["id"] for k in self.target_stream.key)
        self.context = StageContext(flow=flow, run_id=None, store=store,
                                    resolver=self.resolver, target=target, dry_run=False)

    # -- public -----------------------------------------------------------
    def run(self, *, mode: str = "incremental", since: Cursor | None = None,
            dry_run: bool = False, partition: int | None = None) -> RunResult:
        """Run the flow once; ``partition`` (0-based) runs one slice of a partitioned flow."""
        self._set_partition(partition)
        self.mode = mode
        return self._managed(self.run_label(mode, dry_run),
                             lambda result: self._sync(result, mode, since, dry_run))

    def run_label(self, mode: str, dry_run: bool) -> str:
        """The mode shown in the run log: "full" when a flow has no ``incremental``."""
        if dry_run:
            return "dry_run"
        return "full" if mode == "incremental" and self.flow.incremental is None else mode

    def _managed(self, run_mode: str, body: Callable[[RunResult], None]) -> RunResult:
        """Run ``body`` under the flow's lock, recorded in the run log, hooks after."""
        started = time.monotonic()
        with self.store.lock(self.lock_name) as self.lock_owner:
            run_id = self.store.start_run(self.flow.flow, run_mode, owner=self.lock_owner)
            result = RunResult(self.flow.flow, run_id, run_mode, partition=self.partition)
            for connector in (self.source, self.target):   # not this run's
                connector.take_warnings()
            self.context.run_id, self.context.rows_read = run_id, 0
            with run_context(self.flow.flow, run_id, self.partition):
                try:
                    start_stages(self.stages, self.context)
                    body(result)
                except BaseException as exc:
                    result.status, result.error = run_status(result.counts, exc), exc
                    self.store.finish_run(run_id, result.status, message=str(exc)[:2000],
                                          warnings=self._warnings(result))
                    run_hooks(self, result)
                    raise
                result.status = run_status(result.counts)
                self.store.finish_run(run_id, result.status, warnings=self._warnings(result))
                run_hooks(self, result)
                result.seconds = time.monotonic() - started
                log.info("flow %s run %s %s: %s", self.flow.flow, run_id, result.status,
                         dict(result.counts))
        return result

    def _warnings(self, result: RunResult) -> list[str]:
        """The run's warnings: what the source and target systems warned about (SAP's
        ``sap-message``), and ``from:`` paths no record of the run had (their targets
        were left as they were)."""
        for connector in dict.fromkeys((self.source, self.target)):
            result.warnings.extend(f"{connector.name}: {text}"
                                   for text in dict.fromkeys(connector.take_warnings()))
        for mapping in (self.inbound, self.outbound):
            for path in mapping.absent_sources():
                result.warnings.append(
                    f"mapping {mapping.name!r}: no record had the field {path!r} named by "
                    "'from:'; its target was left unchanged (a typo, or the source no longer "
                    "sends it?)")
        for warning in result.warnings:
            log.warning("flow %s: %s", self.flow.flow, warning)
        return result.warnings

    def _sync(self, result: RunResult, mode: str, since: Cursor | None,
              dry_run: bool) -> None:
        """Parked records first, then the source from the watermark, batch by batch."""
        self._retry_parked(result, dry_run)
        self.store.extend_lock(self.lock_name, self.lock_owner)       # heartbeat
        start = self._start_cursor(mode, since)
        batch_size = self.flow.incremental.batch_size if self.flow.incremental else 500
        for batch in self.source.read(self.flow.source.stream, start, batch_size=batch_size):
            rows = [r for r in batch.rows if self._mine(r)]
            deleted = [k for k in batch.deleted_keys if self._mine_key(k)]
            self._process(rows, batch.cursor, result, dry_run, rejected=batch.rejected,
                          deleted_keys=deleted)
            self.store.extend_lock(self.lock_name, self.lock_owner)   # heartbeat
            if self.progress:
                self.progress(result)
        for stage in self.stages:
            stage.finish(self.context)

    # -- partitions -------------------------------------------------------
    def _set_partition(self, partition: int | None) -> None:
        spec = getattr(self.flow, "partitions", None)
        self.partition_count = spec.count if spec else 1
        if partition is not None and not 0 <= partition < self.partition_count:
            raise ConfigError(f"flow {self.flow.flow!r} has {self.partition_count} "
                              f"partition(s); there is no partition {partition}")
        self.partition = partition if self.partition_count > 1 else None
        suffix = ("" if self.partition is None
                  else f"#p{self.partition + 1}of{self.partition_count}")
        self.lock_name = self.flow.flow + suffix
        self.mark_stream = self.flow.source.stream + suffix

    def _mine(self, row: Row) -> bool:
        """Whether a source row belongs to this run's partition."""
        return self._mine_key(record_key(row, self.source_stream.identity))

    def _mine_key(self, source_key: str) -> bool:
        return (self.partition is None
                or _slice_of(source_key, self.partition_count) == self.partition)

    def reread(self, letters) -> tuple[list[Row], list[str]]:
        """The current source rows of dead-lettered records, and the keys now gone.

        A retry loads what the source holds today, not the copy stored when the
        record failed. A key the source no longer has was deleted there: its dead
        letter is closed instead of bringing the record back (the target is not
        touched: the source's delete reaches it through the flow's delete policy).
        A source that cannot look records up by key replays the stored copies (warned).
        """
        stored = [dl for dl in letters if dl.stage == "read"]   # unreadable: as stored
        letters = [dl for dl in letters if dl.stage != "read"]
        if letters and self.source_stream.identity == self.source_stream.key:
            try:
                current = self.source.lookup(self.flow.source.stream,
                                             [dl.source_key for dl in letters])
            except (NotImplementedError, Crm2ErpError) as exc:
                log.warning("flow %s: cannot re-read dead letters from %r (%s); replaying "
                            "the stored copies", self.flow.flow, self.source_system, exc)
            else:
                rows = [current[dl.source_key] for dl in letters if dl.source_key in current]
                gone = [dl.source_key for dl in letters if dl.source_key not in current]
                for key in gone:
                    log.warning("flow %s: %s is no longer in %r; its dead letter is closed",
                                self.flow.flow, key, self.source_system)
                return [dl.payload for dl in stored] + rows, gone
        elif letters:
            log.warning("flow %s: %r identifies records by another field than its key; "
                        "replaying the stored copies", self.flow.flow, self.source_system)
        letters = stored + letters
        return [dl.payload for dl in letters], []

    # -- steps ------------------------------------------------------------
    def _start_cursor(self, mode: str, since: Cursor | None) -> Cursor | None:
        if mode == "full_refresh" or self.flow.incremental is None:
            return None
        if since is not None:
            return since
        watermark = self.store.get_watermark(self.flow.flow, self.mark_stream)
        return apply_lookback(watermark, parse_duration(self.flow.incremental.lookback))

    def _retry_parked(self, result: RunResult, dry_run: bool) -> None:
        parked = [p for p in self.store.dead_letters(flow=self.flow.flow, status="parked",
                                                     limit=1_000_000)
                  if self._mine_key(p.source_key)]
        if parked:
            log.info("flow %s: retrying %d parked records", self.flow.flow, len(parked))
            self._process([dl.payload for dl in parked], None, result, dry_run, retry=True)

    def _process(self, rows: list[Row], cursor: Cursor | None, result: RunResult,
                 dry_run: bool, *, retry: bool = False, rejected=(),
                 deleted_keys=(), closed_keys=()) -> None:
        next_batch()
        counts: Counter = Counter(read=0 if retry else len(rows) + len(rejected))
        commit = BatchCommit(run_id=result.run_id, flow=self.flow.flow, xref=[],
                             dead_letters=[], resolved_keys=[], watermark=None, counts=counts)
        commit.resolved_keys.extend(closed_keys)
        for bad in rejected:   # unreadable records: dead letters naming their place
            self._hold(commit, counts, "read", bad.key or bad.where,
                       f"{bad.where}: {bad.reason}", bad.raw)
        self.context.dry_run = dry_run
        self.context.rows_read += counts["read"]
        items = self._load(self._canonical(rows, counts, commit), counts, commit, result,
                           dry_run)
        if self.write_back is not None and not dry_run:
            self._write_back(items, counts, commit)
        if deleted_keys:   # before the watermark: it never passes a delete not applied
            self._delete(list(deleted_keys), counts, commit, result, dry_run)
        if cursor is not None and not dry_run:
            current = self.store.get_watermark(self.flow.flow, self.mark_stream)
            commit.watermark = (self.mark_stream, later_cursor(current, cursor))
        self._commit(commit, counts, result, dry_run)

    def _load(self, items: list[Item], counts: Counter, commit: BatchCommit,
              result: RunResult, dry_run: bool) -> list[Item]:
        """Canonical items through the stages, the outbound map and the hash check into
        the target (or, in a dry run, into the list of changes). Returns the items
        that reached the target stage, written or unchanged."""
        for stage in self.stages:
            for rejection in stage.process(items, self.context):
                self._hold(commit, counts, rejection.stage, rejection.item.source_key,
                           rejection.reason, rejection.item.source_row)
            rejected = {d.source_key for d in commit.dead_letters}
            items = [i for i in items if i.source_key not in rejected]
        items = self._outbound(items, counts, commit)
        to_write = self._one_write_per_target(self._changed(items, counts, commit), counts,
                                              commit)
        if dry_run:
            self._describe(to_write, result)
        elif to_write:
            self._write(to_write, counts, commit)
        return items

    def _commit(self, commit: BatchCommit, counts: Counter, result: RunResult,
                dry_run: bool) -> None:
        """One state-store transaction for the batch (none in a dry run); counts to result."""
        extra = Counter({k: counts.pop(k) for k in list(counts) if k not in COUNTERS})
        if dry_run:
            result.new_dead_letters += len(commit.dead_letters)
        else:
            outcome = self.store.commit_batch(commit)
            result.new_dead_letters += _new_dead_letters(outcome, commit)
        result.counts.update(counts)
        result.counts.update(extra)

    def _canonical(self, rows: list[Row], counts: Counter, commit: BatchCommit) -> list[Item]:
        """Map inbound, give the canonical id, merge with what the hub knows, validate.

        Failures are dead letters; records without news (echoes of our own
        writes, lookback re-reads) are counted unchanged and go no further.
        """
        key_fields = self.source_stream.identity
        self.resolver.prefetch(self.flow.entity, self.source_system,
                               [record_key(r, key_fields) for r in rows])
        mapped: dict[str, tuple[Row, dict, str]] = {}
        for row in rows:
            source_key = record_key(row, key_fields)
            if not source_key.strip("|").strip():
                self._hold(commit, counts, "read", f"(no key) {payload_hash(row)[:12]}",
                           f"the record has an empty key ({', '.join(key_fields)}); "
                           "it cannot be identified, so it is not loaded", row)
                continue
            try:
                if not self.inbound.matches(row):
                    counts["skipped"] += 1
                    commit.resolved_keys.append(source_key)
                    continue
                data = self.inbound.apply(row, self.resolver)
                canonical_id = self.resolver.to_canonical(self.flow.entity, self.source_system,
                                                          source_key)
            except RecordError as exc:   # ParentMissingError included
                self._hold(commit, counts, exc.stage, source_key, str(exc), row)
                continue
            mapped[source_key] = (row, data, canonical_id)   # a later version wins
        states = self.store.canonical_states(self.flow.entity,
                                             [m[2] for m in mapped.values()])
        items = []
        for source_key, (row, data, canonical_id) in mapped.items():
            state = states.get(canonical_id)
            try:
                item = self._merge(source_key, row, data, canonical_id, state, commit)
            except RecordError as exc:
                self._hold(commit, counts, exc.stage, source_key, str(exc), row)
                continue
            if state is not None and not item.notes["settlement"].has_news \
                    and self.mode not in ("full_refresh", "retry"):
                counts["unchanged"] += 1
                commit.resolved_keys.append(source_key)
                commit.xref.append(self._source_xref(item))
                if learned(state, item.notes["settlement"], self.source_system):
                    self._remember(item, commit)
                continue
            items.append(item)
        return items

    def _merge(self, source_key: str, row: Row, data: dict, canonical_id: str,
               state, commit: BatchCommit) -> Item:
        merged = deep_merge(state.data if state else {}, data)
        merged["id"] = canonical_id
        record = self._validate(merged)
        changed_at = record.updated_at or dt.datetime.now(dt.UTC)
        dumped = record.model_dump(mode="json")
        settlement = settle(
            entity=self.flow.entity, canonical_id=canonical_id, system=self.source_system,
            mapped_paths=list(flatten(data)), new=dumped,
            state=state, ownership=self.flow.ownership, rule=self.flow.conflict_rule,
            changed_at=changed_at)
        if settlement.reverts:   # validated again only when a field was reverted
            for path, value in settlement.reverts.items():
                set_path(merged, path, value)
            record = self._validate(merged)
            dumped = record.model_dump(mode="json")
        commit.conflicts.extend(settlement.conflicts)
        for conflict in settlement.conflicts:
            log.warning("flow %s: conflict on %s %s field %s: %s sent %r, %s kept %r",
                        self.flow.flow, conflict.entity, source_key, conflict.field,
                        conflict.system, conflict.incoming, conflict.winner, conflict.kept)
        item = Item(source_key, row, canonical_id, record)
        item.notes.update(settlement=settlement, state=state, changed_at=changed_at,
                          dumped=(record, dumped))
        return item

    def _validate(self, data: dict):
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            message, field_name = _validation_message(exc)
            raise RecordError(message, stage="validate", field=field_name) from None

    def _remember(self, item: Item, commit: BatchCommit) -> None:
        """The record is in the target: remember its canonical state."""
        record, dumped = item.notes.get("dumped", (None, None))
        if record is not item.record:     # a stage replaced it: dump the one it holds
            dumped = item.record.model_dump(mode="json")
        previous = item.notes.get("state")
        state = next_state(
            entity=self.flow.entity, canonical_id=item.canonical_id,
            system=self.source_system, data=dumped, previous=previous,
            settlement=item.notes.get("settlement") or Settlement(),
            changed_at=item.notes.get("changed_at") or dt.datetime.now(dt.UTC))
        if previous is not None and previous.canonical_id == state.canonical_id \
                and previous.data == state.data and previous.field_times == state.field_times:
            return      # the memory has all of it already (a --full-refresh of unchanged data)
        commit.canonical.append(state)

    def _outbound(self, items: list[Item], counts: Counter, commit: BatchCommit) -> list[Item]:
        """Map each canonical record to the target's row and hash it."""
        ready = []
        for item in items:
            data = _plain(item.record.model_dump(mode="python"))
            data["id"] = item.canonical_id
            try:
                item.target_row = self.outbound.apply(data, self.resolver)
                for path in self.target_owned:
                    pop_path(item.target_row, path)
            except ParentMissingError as exc:
                self._hold(commit, counts, "parked", item.source_key, str(exc), item.source_row)
                continue
            except RecordError as exc:
                self._hold(commit, counts, exc.stage, item.source_key, str(exc),
                           item.source_row)
                continue
            item.target_key = record_key(item.target_row, self.target_stream.key)
            item.hash = payload_hash(item.target_row)
            ready.append(item)
        return ready

    @staticmethod
    def _hold(commit: BatchCommit, counts: Counter, stage: str, key: str, reason: str,
              row: Row) -> None:
        counts["parked" if stage == "parked" else "failed"] += 1
        commit.dead_letters.append(NewDeadLetter(stage, key, reason, row))

    def _changed(self, items: list[Item], counts: Counter,
                 commit: BatchCommit) -> list[Item]:
        """Drop the records whose payload equals the one last written."""
        last = self.store.xref_by_canonical(self.flow.entity, self.target_system,
                                            [i.canonical_id for i in items])
        changed = []
        for item in items:
            entry = last.get(item.canonical_id)
            if entry is not None and entry.payload_hash == item.hash:
                item.target_id = entry.external_id
                counts["unchanged"] += 1
                commit.resolved_keys.append(item.source_key)
                commit.xref.append(self._source_xref(item))
                self._remember(item, commit)
            else:
                changed.append(item)
        return changed

    def _one_write_per_target(self, items: list[Item], counts: Counter,
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
                commit.xref.append(self._source_xref(item))
        items = [item for item in items if last[item.canonical_id] is item]
        # an empty key is one the target assigns on create: it cannot collide
        keyed = [item for item in items if item.target_key.strip("|")]
        owner = {item.target_key: item for item in reversed(keyed)}   # the first one
        taken = self._target_keys_taken(keyed)
        kept = []
        for item in items:
            first = owner.get(item.target_key, item)
            other = taken.get(item.target_key) or (
                None if first is item else (first.canonical_id, first.source_key))
            if other is None or other[0] == item.canonical_id:
                kept.append(item)
                continue
            self._hold(commit, counts, "collision", item.source_key,
                       f"{self.target_system!r} key {item.target_key!r} already belongs to "
                       f"{self.source_system!r} record {other[1]!r}; {item.source_key!r} maps "
                       "to the same key. Writing it would overwrite that record: fix the data "
                       "or the key mapping (or let the dedupe stage merge the two)",
                       item.source_row)
        return kept

    def _target_keys_taken(self, items: list[Item]) -> dict[str, tuple[str, str]]:
        """Target key -> (canonical id, source key) of the record earlier runs wrote
        there, for the keys of ``items`` that exist in the target already."""
        if not items or self.key_is_canonical_id:
            return {}
        try:
            current = self.target.lookup(self.flow.target.stream,
                                         [item.target_key for item in items])
        except NotImplementedError:
            return {}
        id_field = self.target_stream.id_field
        ids = {key: str(row.get(id_field) if id_field else key) for key, row in current.items()}
        owners = self.store.canonical_ids(self.flow.entity, self.target_system, ids.values())
        sources = self.store.external_ids(self.flow.entity, self.source_system,
                                          set(owners.values()))
        return {key: (owners[target_id], sources.get(owners[target_id], "?"))
                for key, target_id in ids.items() if target_id in owners}

    def _write(self, items: list[Item], counts: Counter, commit: BatchCommit) -> None:
        results = self.target.upsert(self.flow.target.stream, [i.target_row for i in items])
        for item, outcome in zip(items, results, strict=True):
            if not outcome.ok:
                self._hold(commit, counts, "write", item.source_key,
                           outcome.error or "refused by the target", item.source_row)
                continue
            counts[outcome.action.value] += 1
            target_id = item.target_id = str(outcome.target_id or outcome.key)
            commit.resolved_keys.append(item.source_key)
            commit.xref.append(self._source_xref(item))
            commit.xref.append(XrefUpsert(self.flow.entity, self.target_system, target_id,
                                          item.canonical_id, item.hash))
            self._remember(item, commit)
            self.resolver.remember(self.flow.entity, self.target_system, target_id,
                                   item.canonical_id)

    def _write_back(self, items: list[Item], counts: Counter, commit: BatchCommit) -> None:
        """Write the target's id onto the source record where it is missing or stale.

        Decided by comparing the source row's field with the target id, so it
        is idempotent and heals itself: a write-back that failed is tried
        again the next time the record is read.
        """
        spec = self.flow.write_back
        key_fields = self.write_back.stream(spec.stream).key
        pending = [i for i in items if i.target_id is not None   # field: a dotted path
                   and str(get_path(i.source_row, spec.field) or "") != i.target_id]
        if not pending:
            return
        rows = [{**{k: i.source_row.get(k) for k in key_fields}, spec.field: i.target_id}
                for i in pending]
        outcomes = self.write_back.update(spec.stream, rows)
        for item, outcome in zip(pending, outcomes, strict=True):
            if outcome.ok:
                counts["written_back"] += 1
                continue
            if item.source_key in commit.resolved_keys:
                commit.resolved_keys.remove(item.source_key)
            self._hold(commit, counts, "write_back", item.source_key,
                       f"written to {self.target_system!r} as {item.target_id}, but the "
                       f"write-back to {spec.connection}.{spec.stream}.{spec.field} failed: "
                       f"{outcome.error}", item.source_row)

    def _source_xref(self, item: Item) -> XrefUpsert:
        return XrefUpsert(self.flow.entity, self.source_system, item.source_key,
                          item.canonical_id, payload_hash(item.source_row))

    def _describe(self, items: list[Item], result: RunResult) -> None:
        """Dry run: what would be written, with the fields that would change."""
        if not items:
            return
        current = self.target.lookup(self.flow.target.stream, [i.target_key for i in items])
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

    def _delete(self, source_keys: list[str], counts: Counter, commit: BatchCommit,
                result: RunResult, dry_run: bool) -> None:
        """Apply source deletes to the target, in the batch's commit.

        A deleted record's open dead letter is closed (a retry must not bring it
        back). A delete the target refuses, or one that finds no record there
        ("not found"), is a dead letter of stage ``delete``, retried by ``dlq
        retry``. An applied delete marks the target's cross-reference entry, so
        the same delete read again (lookback, retry) is not sent twice.
        """
        commit.resolved_keys.extend(source_keys)
        mode = DeleteMode(self.flow.delete_policy)
        if mode is DeleteMode.IGNORE:
            return
        canonical = self.store.canonical_ids(self.flow.entity, self.source_system, source_keys)
        targets = self.store.xref_by_canonical(self.flow.entity, self.target_system,
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
        outcomes = self.target.delete(self.flow.target.stream,
                                      [target_id for _, target_id in pending], mode)
        for (source_key, target_id), outcome in zip(pending, outcomes, strict=True):
            if not outcome.ok:
                commit.resolved_keys[:] = [k for k in commit.resolved_keys if k != source_key]
                self._hold(commit, counts, "delete", source_key,
                           f"deleted in {self.source_system!r}, but the {mode.value} of "
                           f"{self.target_system!r} record {target_id} failed: "
                           f"{outcome.error or 'refused by the target'}",
                           {DELETED_MARK: source_key})
            elif outcome.action is WriteAction.UNCHANGED:
                log.info("flow %s: %s record %s for deleted %s was already gone",
                         self.flow.flow, self.target_system, target_id, source_key)
            else:
                counts["deleted"] += 1
                commit.xref.append(XrefUpsert(self.flow.entity, self.target_system, target_id,
                                              canonical[source_key], applied))


def _new_dead_letters(outcome, commit: BatchCommit) -> int:
    """Dead letters of this batch that are news: a new record, or a changed one.

    The same failing record read again (through the lookback, or a parked
    record retried) is already known and is not counted again.
    """
    if outcome is None:
        return len(commit.dead_letters)
    return sum(1 for write in outcome.dead_letters if write.new or write.payload_changed)


def replay(runner: FlowRunner, dead_letters) -> RunResult:
    """Run dead-lettered records of one flow again (after a mapping fix, say)."""
    runner._set_partition(None)
    runner.mode = "retry"
    deletes = [dl.source_key for dl in dead_letters if dl.stage == "delete"]
    rows, gone = runner.reread([dl for dl in dead_letters if dl.stage != "delete"])
    return runner._managed("retry", lambda result: runner._process(
        rows, None, result, False, retry=True, deleted_keys=deletes, closed_keys=gone))

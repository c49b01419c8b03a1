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

The steps live in their own modules: :mod:`crm2erp.engine.inbound` (map,
merge, validate), :mod:`crm2erp.engine.load` (stages, outbound map, hash and
collision checks, deletes) and :mod:`crm2erp.engine.sinks` (the write, or in a
dry run its description). This module holds the run around them: the lock,
the run log, partitions and the batch loop; :mod:`crm2erp.engine.deadletters` runs
dead letters again through it.

Killing the process at any point loses nothing: the watermark is behind every
record not yet committed, and the upsert by key makes the replay idempotent.
"""

from __future__ import annotations

__all__ = ["FlowRunner", "RunResult", "Change", "record_key"]

import logging
import time
import zlib
from collections import Counter
from collections.abc import Callable

from crm2erp.contract import Connector, Cursor, Row
from crm2erp.engine.batch import COUNTERS, Change, RunResult, hold, record_key
from crm2erp.engine.cursors import apply_lookback, parse_duration
from crm2erp.engine.fingerprint import flow_fingerprint, source_hash
from crm2erp.engine.gctuning import fewer_collections
from crm2erp.engine.inbound import canonicalize
from crm2erp.engine.load import delete, load
from crm2erp.engine.memory import owner_of
from crm2erp.engine.resolver import StoreResolver
from crm2erp.engine.sinks import DryRunSink, TargetSink, WriteSink
from crm2erp.engine.stages import Item, StageContext, build_stages, run_hooks, start_stages
from crm2erp.engine.status import run_status, run_warnings
from crm2erp.errors import ConfigError
from crm2erp.logcontext import next_batch, run_context
from crm2erp.mapping.compiler import CompiledMapping
from crm2erp.mapping.models import FlowSpec
from crm2erp.schemas import entity_model
from crm2erp.store import BatchCommit, StateStore, XrefUpsert

log = logging.getLogger(__name__)


def slice_of(source_key: str, count: int) -> int:
    """The partition of a source key: a stable hash, the same in every process."""
    return zlib.crc32(source_key.encode()) % count


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
        self.skip_unchanged = True   # the hash check; a re-sync writes the record anyway
        # target fields computed only from fields the target system owns: never sent
        self.target_owned = [
            target for target, sources in outbound.sources().items()
            if sources and all(owner_of(s, flow.ownership) == self.target_system
                               for s in sources)]
        # a target key computed from the canonical id alone cannot collide
        self.key_is_canonical_id = all(
            outbound.sources().get(k) == ["id"] for k in self.target_stream.key)
        self.fingerprint = flow_fingerprint(flow, inbound, outbound)
        self.context = StageContext(flow=flow, run_id=None, store=store,
                                    resolver=self.resolver, target=target, dry_run=False)
        self.sink: WriteSink = TargetSink(self)   # each run sets its own

    # -- public -----------------------------------------------------------
    def run(self, *, mode: str = "incremental", since: Cursor | None = None,
            dry_run: bool = False, partition: int | None = None) -> RunResult:
        """Run the flow once; ``partition`` (0-based) runs one slice of a partitioned flow."""
        self._set_partition(partition)
        self.mode = mode
        return self._managed(self.run_label(mode, dry_run),
                             lambda result: self._sync(result, mode, since), dry_run=dry_run)

    def run_label(self, mode: str, dry_run: bool) -> str:
        """The mode shown in the run log: "full" when a flow has no ``incremental``."""
        if dry_run:
            return "dry_run"
        return "full" if mode == "incremental" and self.flow.incremental is None else mode

    def _managed(self, run_mode: str, body: Callable[[RunResult], None], *,
                 dry_run: bool = False) -> RunResult:
        """Run ``body`` under the flow's lock, recorded in the run log, hooks after.

        The run's writes go to the target, or in a dry run to a sink that only
        describes them (:mod:`crm2erp.engine.sinks`)."""
        started = time.monotonic()
        with self.store.lock(self.lock_name) as self.lock_owner:
            run_id = self.store.start_run(self.flow.flow, run_mode, owner=self.lock_owner)
            result = RunResult(self.flow.flow, run_id, run_mode, partition=self.partition)
            for connector in (self.source, self.target):   # not this run's
                connector.take_warnings()
            self.sink = DryRunSink(self, result) if dry_run else TargetSink(self)
            self.context.run_id, self.context.rows_read = run_id, 0
            self.context.dry_run = self.sink.dry_run
            with run_context(self.flow.flow, run_id, self.partition):
                try:
                    start_stages(self.stages, self.context)
                    with fewer_collections():
                        try:
                            body(result)
                        except BaseException:   # the batches done are stored still
                            self._finish_sink_after_failure()
                            raise
                        self.sink.finish()
                except BaseException as exc:
                    result.status, result.error = run_status(result.counts, exc), exc
                    self.store.finish_run(run_id, result.status, message=str(exc)[:2000],
                                          warnings=run_warnings(self, result))
                    run_hooks(self, result)
                    raise
                result.status = run_status(result.counts)
                self.store.finish_run(run_id, result.status, warnings=run_warnings(self, result))
                run_hooks(self, result)
                result.seconds = time.monotonic() - started
                log.info("flow %s run %s %s: %s", self.flow.flow, run_id, result.status,
                         dict(result.counts))
        return result

    def _sync(self, result: RunResult, mode: str, since: Cursor | None) -> None:
        """Parked records first, then the source from the watermark, batch by batch."""
        self._retry_parked(result)
        self.store.extend_lock(self.lock_name, self.lock_owner)       # heartbeat
        start = self._start_cursor(mode, since)
        batch_size = self.flow.incremental.batch_size if self.flow.incremental else 500
        for batch in self.source.read(self.flow.source.stream, start, batch_size=batch_size):
            rows, deleted = list(batch.rows), list(batch.deleted_keys)
            if self.partition is not None:   # one slice of a partitioned flow
                rows = [r for r in rows if self._mine(r)]
                deleted = [k for k in deleted if self._mine_key(k)]
            self._process(rows, batch.cursor, result, rejected=batch.rejected,
                          deleted_keys=deleted)   # its commit renews the lock
            if self.progress:
                self.progress(result)
        for stage in self.stages:
            stage.finish(self.context)

    def _finish_sink_after_failure(self) -> None:
        """Store the batches the sink still holds; the run's own error is the one told."""
        try:
            self.sink.finish()
        except Exception as exc:   # e.g. the state store is down: what failed the run
            log.warning("flow %s: could not store the last batches' progress (%s); "
                        "they are read again next run", self.flow.flow, exc)

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
                or slice_of(source_key, self.partition_count) == self.partition)

    # -- steps ------------------------------------------------------------
    def _start_cursor(self, mode: str, since: Cursor | None) -> Cursor | None:
        if mode == "full_refresh" or self.flow.incremental is None:
            return None
        if since is not None:
            return since
        watermark = self.store.get_watermark(self.flow.flow, self.mark_stream)
        return apply_lookback(watermark, parse_duration(self.flow.incremental.lookback))

    def _retry_parked(self, result: RunResult) -> None:
        parked = [p for p in self.store.dead_letters(flow=self.flow.flow, status="parked",
                                                     limit=1_000_000)
                  if self._mine_key(p.source_key)]
        if parked:
            log.info("flow %s: retrying %d parked records", self.flow.flow, len(parked))
            self._process([dl.payload for dl in parked], None, result, retry=True)

    def _process(self, rows: list[Row], cursor: Cursor | None, result: RunResult, *,
                 retry: bool = False, rejected=(), deleted_keys=(), closed_keys=()) -> None:
        """One batch: canonicalise, load, write back, delete, then commit it."""
        next_batch()
        counts: Counter = Counter(read=0 if retry else len(rows) + len(rejected))
        commit = BatchCommit(run_id=result.run_id, flow=self.flow.flow, xref=[],
                             dead_letters=[], resolved_keys=[], watermark=None, counts=counts)
        commit.resolved_keys.extend(closed_keys)
        for bad in rejected:   # unreadable records: dead letters naming their place
            hold(commit, counts, "read", bad.key or bad.where,
                 f"{bad.where}: {bad.reason}", bad.raw)
        self.context.rows_read += counts["read"]
        items = load(self, canonicalize(self, rows, counts, commit, skip_synced=not retry),
                     counts, commit)
        self.sink.write_back(items, counts, commit)
        if deleted_keys:   # before the watermark: it never passes a delete not applied
            delete(self, list(deleted_keys), counts, commit)
        self._commit(commit, counts, result, cursor)

    def rerun(self, rows: list[Row], *, deleted_keys=(), closed_keys=(),
              force: bool = False) -> RunResult:
        """``rows`` (read again by key) through the flow as a locked, logged ``retry``
        run that leaves the watermark; ``closed_keys`` close their dead letters;
        ``force`` writes a record even if its payload equals the last one written."""
        self._set_partition(None)
        self.mode = "retry"
        if force:
            self.skip_unchanged = False
        return self._managed("retry", lambda result: self._process(
            rows, None, result, retry=True, deleted_keys=list(deleted_keys),
            closed_keys=closed_keys))

    def _commit(self, commit: BatchCommit, counts: Counter, result: RunResult,
                cursor: Cursor | None = None) -> None:
        """The batch through the run's sink (one state-store transaction, the watermark
        moved to ``cursor``; nothing stored in a dry run); its counts to ``result``."""
        extra = Counter({k: counts.pop(k) for k in list(counts) if k not in COUNTERS})
        result.new_dead_letters += self.sink.commit(commit, cursor)
        result.counts.update(counts)
        result.counts.update(extra)

    def source_hash(self, row: Row) -> str:
        """The hash kept in a source record's xref entry (:func:`source_hash`)."""
        return source_hash(self.fingerprint, row)

    def source_xref(self, item: Item) -> XrefUpsert:
        """The xref entry of ``item``'s source record (:meth:`source_hash`)."""
        row_hash = item.notes.get("source_hash") or self.source_hash(item.source_row)
        return XrefUpsert(self.flow.entity, self.source_system, item.source_key,
                          item.canonical_id, row_hash)


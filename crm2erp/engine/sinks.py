"""Where a run's writes go: the target, or (a dry run) a list of descriptions.

The load steps (:mod:`crm2erp.engine.load`) decide *what* to write; a
:class:`WriteSink` does it. :class:`TargetSink` upserts into the target,
writes the target's id back to the source, applies deletes and commits the
batch (xref, dead letters, canonical memory, watermark) in one state-store
transaction after the target returned. :class:`DryRunSink` writes nothing:
it looks the target records up and collects, field by field, what would
change into the run's :attr:`RunResult.changes`.
"""

from __future__ import annotations

__all__ = ["WriteSink", "TargetSink", "DryRunSink"]

import logging
import time
from collections import Counter
from typing import Protocol

from crm2erp.contract import Cursor, DeleteMode, WriteAction
from crm2erp.engine.batch import DELETED_MARK, Change, RunResult, hold, new_dead_letters
from crm2erp.engine.cursors import later_cursor
from crm2erp.engine.inbound import remember
from crm2erp.engine.stages import Item
from crm2erp.jsonutil import to_jsonable
from crm2erp.mapping.paths import get_path
from crm2erp.store import BatchCommit, XrefUpsert

log = logging.getLogger(__name__)

#: A batch that brings the state store nothing but its counts and the watermark (a
#: re-sync of unchanged records) is held back, at most this long, and goes with a
#: later batch's commit: such a run commits about once a second, not once a batch.
#: Held is never lost work: a run that stops before storing it reads those records
#: again next time, and finds them unchanged again.
HOLD_SECONDS = 1.0

#: A delete to make: (source key, target id).
PendingDelete = tuple[str, str]


class WriteSink(Protocol):
    """What the load steps call to write a batch; one per run."""

    dry_run: bool          # told to the stages (StageContext.dry_run) and the run log

    def write(self, items: list[Item], counts: Counter, commit: BatchCommit) -> None:
        """Upsert the changed records ``items`` (their ``target_row``)."""

    def write_back(self, items: list[Item], counts: Counter, commit: BatchCommit) -> None:
        """Write the target's ids of ``items`` back onto their source records."""

    def delete(self, pending: list[PendingDelete], mode: DeleteMode,
               canonical: dict[str, str], counts: Counter, commit: BatchCommit) -> None:
        """Apply the source deletes ``pending`` to the target."""

    def commit(self, commit: BatchCommit, cursor=None) -> int:
        """Close the batch (with the watermark at ``cursor``); the new dead letters."""

    def finish(self) -> None:
        """The run's batches are done (or it failed): store what is still held."""


class TargetSink:
    """Writes to the target and commits each batch to the state store."""

    dry_run = False

    def __init__(self, runner):
        self.runner = runner
        self._mark: Cursor | None = None   # the watermark as this run last committed it,
        self._mark_read = False            # read at the run's first commit
        self._held: BatchCommit | None = None   # batches of progress only, not yet stored
        self._stored_at = time.monotonic()

    def write(self, items: list[Item], counts: Counter, commit: BatchCommit) -> None:
        runner = self.runner
        if not items:
            return
        entity, system = runner.flow.entity, runner.target_system
        results = runner.target.upsert(runner.flow.target.stream,
                                       [i.target_row for i in items])
        for item, outcome in zip(items, results, strict=True):
            if not outcome.ok:
                hold(commit, counts, "write", item.source_key,
                     outcome.error or "refused by the target", item.source_row)
                continue
            counts[outcome.action.value] += 1
            target_id = item.target_id = str(outcome.target_id or outcome.key)
            commit.resolved_keys.append(item.source_key)
            commit.xref.append(runner.source_xref(item))
            commit.xref.append(XrefUpsert(entity, system, target_id, item.canonical_id,
                                          item.hash))
            remember(runner, item, commit)
            runner.resolver.remember(entity, system, target_id, item.canonical_id)

    def write_back(self, items: list[Item], counts: Counter, commit: BatchCommit) -> None:
        """Write the target's id onto the source record where it is missing or stale.

        Decided by comparing the source row's field with the target id, so it
        is idempotent and heals itself: a write-back that failed is tried
        again the next time the record is read.
        """
        runner = self.runner
        if runner.write_back is None:
            return
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

    def delete(self, pending: list[PendingDelete], mode: DeleteMode,
               canonical: dict[str, str], counts: Counter, commit: BatchCommit) -> None:
        runner = self.runner
        outcomes = runner.target.delete(runner.flow.target.stream,
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
                         runner.flow.flow, runner.target_system, target_id, source_key)
            else:
                counts["deleted"] += 1
                commit.xref.append(XrefUpsert(runner.flow.entity, runner.target_system,
                                              target_id, canonical[source_key],
                                              f"{DELETED_MARK}:{mode.value}"))
                # the source row's hash is forgotten: the same row read again (restored
                # in the source) is written again, not skipped as already synced
                commit.xref.append(XrefUpsert(runner.flow.entity, runner.source_system,
                                              source_key, canonical[source_key], None))

    def commit(self, commit: BatchCommit, cursor=None) -> int:
        """One state-store transaction for the batch; the watermark never passes a
        record or delete of it that was not applied (they are dead letters)."""
        runner = self.runner
        if cursor is not None:
            if not self._mark_read:   # read once: the run holds the flow's lock
                self._mark = runner.store.get_watermark(runner.flow.flow, runner.mark_stream)
                self._mark_read = True
            mark = later_cursor(self._mark, cursor)   # not None: cursor is not
            if mark is not None:
                commit.watermark = (runner.mark_stream, mark)
        if commit.watermark is not None:
            self._mark = commit.watermark[1]
        if self._held is not None:   # the held batches go with this one
            commit.counts = Counter(self._held.counts) + Counter(commit.counts)
            commit.watermark = commit.watermark or self._held.watermark
            self._held = None
        if _progress_only(commit) and time.monotonic() - self._stored_at < HOLD_SECONDS:
            self._held = commit
            return 0
        return self._store(commit)

    def finish(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._store(held)

    def _store(self, commit: BatchCommit) -> int:
        """One state-store transaction, carrying the lock's heartbeat."""
        runner = self.runner
        written = new_dead_letters(
            runner.store.commit_batch(commit, (runner.lock_name, runner.lock_owner)), commit)
        self._stored_at = time.monotonic()
        return written


def _progress_only(commit: BatchCommit) -> bool:
    """Whether the batch brings the state store only its counts and the watermark."""
    return not (commit.xref or commit.dead_letters or commit.resolved_keys
                or commit.canonical or commit.conflicts)


class DryRunSink:
    """Writes nothing: what would be written goes to ``result.changes``."""

    dry_run = True

    def __init__(self, runner, result: RunResult):
        self.runner = runner
        self.result = result

    def write(self, items: list[Item], counts: Counter, commit: BatchCommit) -> None:
        """What would be written, with the fields that would change."""
        if not items:
            return
        result = self.result
        current = self.runner.target.lookup(self.runner.flow.target.stream,
                                            [i.target_key for i in items])
        for item in items:
            key, row = item.target_key or "", item.target_row or {}   # set by outbound()
            before = current.get(key)
            if before is None:
                result.changes.append(Change("create", key, to_jsonable(row)))
                result.counts["created"] += 1
                continue
            diff = {name: to_jsonable(value) for name, value in row.items()
                    if to_jsonable(before.get(name)) != to_jsonable(value)}
            action = "update" if diff else "unchanged"
            result.counts["updated" if diff else "unchanged"] += 1
            result.changes.append(Change(action, key, diff))

    def write_back(self, items: list[Item], counts: Counter, commit: BatchCommit) -> None:
        return   # the target ids are not known: nothing was written

    def delete(self, pending: list[PendingDelete], mode: DeleteMode,
               canonical: dict[str, str], counts: Counter, commit: BatchCommit) -> None:
        self.result.changes.extend(Change(mode.value, target_id) for _, target_id in pending)

    def commit(self, commit: BatchCommit, cursor=None) -> int:
        runner = self.runner   # nothing stored but the lock's heartbeat
        runner.store.extend_lock(runner.lock_name, runner.lock_owner)
        return len(commit.dead_letters)   # every one is news

    def finish(self) -> None:
        return

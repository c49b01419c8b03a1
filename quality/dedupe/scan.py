"""Duplicates among records synced before matching was switched on.

:func:`scan` (``crm2erp dedupe scan FLOW``) matches the flow's records that
are already linked in the cross-reference - the hub's canonical records that
have a record in the flow's target - with the flow's matching configuration or
trained model, and queues every candidate pair for the steward (the same
queue as a run's review pairs, marked ``origin: scan``). It never merges:
both records are in the target already, so only a steward's decision may fold
one into the other. A pair stored before (pending or decided) is not queued
again.

:func:`merge_pair` applies an accepted scanned pair in the target, by the
target's rules: the older record survives; the newer one's target record is
folded into the survivor's by the target's own merge when its stream declares
one (``merges``: Tryton's ``party.replace`` moves the loser's sales and
invoices and archives it with ``replaced_by``), else archived (``delete`` in
mode ``archive``: an SQL stream's ``archive:`` column, never a hard DELETE; a
target that cannot archive is refused with what to configure, before anything
changes); its source records are pointed at the
survivor in the cross-reference; and both source records are synced again
through the flow, so the dedupe stage writes the golden record (survivorship,
identifiers protected, the steward's overrides) to the survivor's target
record and a ``write_back:`` puts the survivor's target id on both. A later
change of either source record updates the survivor.
"""

from __future__ import annotations

__all__ = ["ORIGIN", "ScanResult", "MergeResult", "scan", "merge_pair", "apply_accepted",
           "is_scanned"]

import logging
from dataclasses import dataclass, replace

from crm2erp.contract import Connector, DeleteMode
from crm2erp.engine.batch import DELETED_MARK
from crm2erp.errors import ConfigError, FatalError
from crm2erp.quality.dedupe.pool import MatchRecord, from_state
from crm2erp.store.dedupe import DECISIONS, DedupeMember, DedupePair, pair_key

log = logging.getLogger(__name__)

ORIGIN = "scan"


def is_scanned(pair: DedupePair) -> bool:
    """Whether a pair was found by a scan of records already synced."""
    return pair.details.get("origin") == ORIGIN


@dataclass(frozen=True)
class ScanResult:
    """What a scan looked at and the pairs it found (id, stored before?)."""

    flow: str
    records: int
    pairs: list[tuple[DedupePair, bool]]

    @property
    def new(self) -> int:
        return sum(1 for _, before in self.pairs if not before)


@dataclass(frozen=True)
class MergeResult:
    """An applied merge: who survived, which target record was archived (``how``:
    ``archived``) or merged into the survivor's by the target (``merged``)."""

    pair_id: int
    survivor: str
    loser: str
    survivor_target_id: str
    archived_target_id: str
    repointed: int
    how: str = "archived"


def synced_records(runner) -> dict[str, MatchRecord]:
    """The flow's records already in its target: canonical id -> match record
    (with the source key the flow's source gave it, when it has one)."""
    store, entity = runner.store, runner.flow.entity
    states = {s.canonical_id: s for s in store.iter_canonical_states(entity)}
    targets = store.xref_by_canonical(entity, runner.target_system, list(states))
    live = [cid for cid, entry in targets.items()
            if not (entry.payload_hash or "").startswith(DELETED_MARK)]
    sources = store.external_ids(entity, runner.source_system, live)
    return {cid: from_state(states[cid], sources.get(cid)) for cid in sorted(live)}


def scan(runner, stage) -> ScanResult:
    """Find and queue candidate pairs among FLOW's synced records (see the module doc)."""
    store, entity = runner.store, runner.flow.entity
    records = synced_records(runner)
    if len(records) < 2:
        return ScanResult(runner.flow.flow, len(records), [])
    known = store.known_dedupe_pairs(entity, list(records))
    rejected = [k for k, v in known.items() if v == "rejected"]
    try:
        found = stage.matcher.dedupe([r.data for r in records.values()],
                                     rejected=rejected).pairs(["merge", "review"])
    except ValueError as exc:   # ImplausibleFit: no model is better than a wrong one
        if type(exc).__name__ != "ImplausibleFit":
            raise
        raise ConfigError(f"flow {runner.flow.flow!r}: {exc}") from None
    # a decided pair stays decided; a pending one is refreshed in place, never doubled
    fresh = [p for p in found
             if known.get(pair_key(str(p.left_id), str(p.right_id))) not in
             (*DECISIONS, "merged")]
    ids = stage.save_pairs(runner.context, records, [], fresh, {}, origin=ORIGIN)
    stored = {p.id: p for p in store.dedupe_pairs(flow=runner.flow.flow, status="pending",
                                                  limit=1_000_000) if p.id in ids.values()}
    pairs = [(stored[ids[pair_key(str(p.left_id), str(p.right_id))]],
              pair_key(str(p.left_id), str(p.right_id)) in known) for p in fresh]
    pairs.sort(key=lambda x: -x[0].match_probability)
    log.info("flow %s: scan of %d synced %s records queued %d pair(s) for review "
             "(%d new)", runner.flow.flow, len(records), entity, len(pairs),
             sum(1 for _, before in pairs if not before))
    return ScanResult(runner.flow.flow, len(records), pairs)


def apply_accepted(project, store, pair: DedupePair) -> MergeResult:
    """Merge an accepted scanned pair in its flow's target (what ``dedupe decide``,
    ``dedupe review`` and the console call right after the steward accepts)."""
    from crm2erp.engine import Engine

    with Engine(project, store) as engine:
        runner = engine.runner(pair.flow)
        stage = next((s for s in runner.stages if s.name == "dedupe"), None)
        if stage is None:
            raise ConfigError(f"pair #{pair.id}: flow {pair.flow!r} has no dedupe section "
                              "any more; nothing was merged")
        return merge_pair(project, runner, stage, pair)


def _refuse(runner, pair: DedupePair, why: str) -> ConfigError:
    return ConfigError(f"pair #{pair.id} of flow {runner.flow.flow!r} is accepted, but its "
                       f"merge was not applied: {why}; nothing was changed (accept it again to "
                       f"merge: crm2erp dedupe decide {pair.id} accept)")


def _target_merges(runner) -> bool:
    """Whether the target folds the loser into the survivor itself (documents moved)."""
    return (runner.target_stream.merges
            and type(runner.target).merge is not Connector.merge)


def _check_archive(runner, pair: DedupePair) -> None:
    """Refuse, before anything changes, when the target stream cannot archive."""
    if _target_merges(runner):
        return
    target, stream = runner.target, runner.flow.target.stream
    where = f"stream {stream!r} of connection {runner.target_system!r}"
    if type(target).delete is Connector.delete:
        raise _refuse(runner, pair, f"connector {target.name!r} ({where}) cannot archive "
                      "records, and a merge never deletes one")
    modes = runner.target_stream.delete_modes
    if modes is not None and "archive" not in modes:
        raise _refuse(runner, pair, (
            f"{where} has no archive setting, and a merge never deletes the other record; "
            f"give the stream an 'archive: {{column: ..., value: ...}}' setting in "
            f"connections.yaml (docs/connectors/{target.name}.md), e.g. "
            f"archive: {{column: active, value: false}}"))


def merge_pair(project, runner, stage, pair: DedupePair) -> MergeResult:
    """Apply an accepted scanned pair in the target and the hub (see the module doc)."""
    store, flow, entity = runner.store, runner.flow, runner.flow.entity
    if pair.status != "accepted":
        raise ConfigError(f"pair #{pair.id} is {pair.status}, not accepted: nothing to merge")
    applied = pair.details.get("applied")
    if applied:
        raise ConfigError(f"pair #{pair.id} was merged already: {applied['survivor']} kept, "
                          f"{runner.target_system} record {applied['archived_target_id']} "
                          f"{applied.get('how', 'archived')}")
    ids = [pair.left_id, pair.right_id]
    states = store.canonical_states(entity, ids)
    targets = store.xref_by_canonical(entity, runner.target_system, ids)
    gone = [i for i in ids if i not in states or i not in targets
            or (targets[i].payload_hash or "").startswith(DELETED_MARK)]
    if gone:
        raise _refuse(runner, pair, f"record {', '.join(gone)} is no longer a synced record "
                      f"with a record in {runner.target_system!r} (merged or deleted since?)")
    sources = store.external_ids(entity, runner.source_system, ids)
    records = {cid: from_state(states[cid], sources.get(cid)) for cid in ids}
    # the older record survives (as a run's merge keeps the oldest member's id)
    survivor, loser = sorted(ids, key=lambda c: (records[c].updated_at, c))
    if survivor not in sources:
        if loser not in sources:
            raise _refuse(runner, pair, f"neither record came from {runner.source_system!r}, "
                          f"the source of flow {flow.flow!r}")
        survivor, loser = loser, survivor
    _check_archive(runner, pair)
    with store.lock(flow.flow):   # no run of the flow is live (else LockHeldError, exit 3)
        pass

    # the cluster: both records (by the source record the flow reads) and the members
    # of earlier merges into either, all now members of the survivor
    earlier = store.dedupe_members(entity, ids)
    cluster = {m.member_id: m for cid in ids for m in earlier.get(cid, [])}
    for cid in ids:
        cluster.setdefault(cid, DedupeMember(
            cid, survivor, runner.source_system if cid in sources else records[cid].system,
            sources.get(cid), records[cid].data, flow.flow))
    members = [replace(m, canonical_id=survivor) for m in cluster.values()]
    golden, record = stage.golden_record([m.data for m in members], survivor)
    if record is None:
        raise _refuse(runner, pair, "the golden record of the two does not validate (the "
                      "log names the field); set the field with an override when accepting")

    loser_tid, survivor_tid = targets[loser].external_id, targets[survivor].external_id
    how = "merged" if _target_merges(runner) else "archived"
    if how == "merged":
        outcome = runner.target.merge(flow.target.stream, loser_tid, survivor_tid)
    else:
        [outcome] = runner.target.delete(flow.target.stream, [loser_tid], DeleteMode.ARCHIVE)
    if not outcome.ok:
        verb = f"merging it into {survivor_tid}" if how == "merged" else "archiving it"
        raise FatalError(f"pair #{pair.id}: {verb} ({runner.target_system!r} record "
                         f"{loser_tid}) failed: {outcome.error}; nothing else was changed")
    if outcome.error:   # done, with a note (the target's warnings the merge answered)
        log.warning("pair #%s: %s record %s %s: %s", pair.id, runner.target_system,
                    loser_tid, how, outcome.error)
    moved = store.merge_canonical(entity, loser, survivor, target_system=runner.target_system,
                                  archived_mark=f"{DELETED_MARK}:{DeleteMode.ARCHIVE.value}")
    store.save_dedupe_merge(entity, flow.flow, None, survivor, members,
                            stage.provenance(golden, {m.member_id: m for m in members}))
    result = MergeResult(pair.id, survivor, loser, survivor_tid, loser_tid, moved, how)
    store.annotate_dedupe_pair(pair.id, applied={
        "survivor": survivor, "loser": loser, "survivor_target_id": survivor_tid,
        "archived_target_id": loser_tid, "how": how,
        **({"note": outcome.error} if outcome.error else {})})
    for source_key in (sources[survivor], sources.get(loser)):   # the loser's: write-back
        if source_key is not None:
            _resync(project, runner, source_key, pair)
    log.info("flow %s: pair #%s merged: %s record %s %s, %s kept as %s", flow.flow,
             pair.id, runner.target_system, loser_tid, how, survivor, survivor_tid)
    return result


def _resync(project, runner, source_key: str, pair: DedupePair) -> None:
    """Write the survivor's golden record: a source record through the flow, once
    (with a ``write_back:``, its target id goes back onto the source record)."""
    from crm2erp.engine.resync import resync_record

    try:
        result = resync_record(project, runner.store, runner.flow.flow, source_key)
    except ConfigError as exc:
        raise FatalError(f"pair #{pair.id}: merged in the hub and archived in the target, "
                         f"but the golden record was not written: {exc}") from None
    if result.counts.get("failed") or result.new_dead_letters:
        raise FatalError(f"pair #{pair.id}: merged, but writing the golden record to "
                         f"{runner.target_system!r} failed; see crm2erp dlq list "
                         f"--flow {runner.flow.flow}")

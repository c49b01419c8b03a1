"""The dedupe batch stage: merge duplicates before they reach the target.

For a flow with a ``dedupe:`` section, every batch's *new* records (not
synced before) are matched with :class:`~crm2erp.quality.dedupe.Matcher`:
among themselves (``dedupe``) and against what exists (``link``): the hub's
canonical records and, optionally, the target's own records
(:mod:`crm2erp.quality.dedupe.pool`). Per pair, in this order:

1. a steward's stored ``rejected`` keeps the pair apart (passed to the matcher);
2. a deterministic rule (same VAT id...) or ``p >= upper`` merges, and so
   does a stored ``accepted``;
3. ``lower <= p < upper`` is a review pair: stored as ``pending`` and the
   newer record is parked (``review: park``) until a steward decides with
   ``crm2erp dedupe review`` / ``decide``. The engine retries parked records
   at the start of every run; the stored decision then merges or separates
   them, or the record stays parked without a second queue entry.

A merge points every new member at one canonical id - the existing record's
(for a target record: its key value, so the upsert updates it), else the
oldest member's - and replaces its record by the golden record built with the
survivorship rules. The members, the merged pairs and the provenance of
every surviving value are stored. Records already synced are not re-matched;
when one that belongs to a merged cluster changes, its golden record is
rebuilt from the members' latest values, so survivorship keeps holding.
"""

from __future__ import annotations

__all__ = ["DedupeStage", "dedupe_stage"]

import logging
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from crm2erp.engine.inbound import canonicalize
from crm2erp.engine.memory import deep_merge, flatten, set_path
from crm2erp.engine.stages import Item, Rejection, StageContext
from crm2erp.errors import ConfigError
from crm2erp.quality.dedupe.pool import (
    SOURCE_FIELD,
    MatchRecord,
    from_item,
    from_state,
    load_target_records,
)
from crm2erp.schemas import entity_model
from crm2erp.store.dedupe import DedupeMember, DedupePair, Provenance, pair_key

if TYPE_CHECKING:  # numpy & co. (the quality extra): only flows that deduplicate load them
    from crm2erp.quality.dedupe.config import MatchConfig
    from crm2erp.quality.dedupe.results import PairResult

log = logging.getLogger(__name__)


def dedupe_stage(flow, store) -> DedupeStage | None:
    """Stage factory (entry point ``crm2erp.stages``): flows with a ``dedupe:`` section."""
    return DedupeStage(flow, store) if getattr(flow, "dedupe", None) is not None else None


dedupe_stage.order = 20  # type: ignore[attr-defined]  # after the quality gate (10)


def _strength(pair: PairResult) -> tuple[int, float]:
    return (1 if pair.reason.startswith("rule:") else 0, pair.match_weight)


class _Groups:
    """Union-find over record ids."""

    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


class DedupeStage:
    """The batch stage; see the module docstring."""

    name = "dedupe"

    def __init__(self, flow, store):
        self.flow, self.store, self.section = flow, store, flow.dedupe
        self.entity = flow.entity
        self.system = flow.source.connection
        self.model = entity_model(flow.entity)
        try:
            from crm2erp.quality.dedupe.matcher import Matcher
        except ImportError as exc:
            raise ConfigError(f"flow {flow.flow!r} has a dedupe section, but the matching "
                              f"libraries are not installed ({exc}); pip install "
                              "'crm2erp[quality]'") from None
        self.config = self._config()
        self.model_info = store.dedupe_model(flow.flow)
        params = None
        if self.model_info is not None:   # a trained model beats the configuration's values
            from crm2erp.quality.dedupe.model import from_payload
            params = from_payload(self.config, self.model_info.model, flow.flow)
        self.matcher = Matcher(self.config, params)
        if self.matcher.params is None:
            log.warning("flow %s: no trained matching model and the configuration has no "
                        "fixed m/u/lambda, so they are estimated from the first batch; run "
                        "crm2erp dedupe train %s (see docs/dedupe.md)", flow.flow, flow.flow)
        self.target_mapping = self._target_mapping()
        self._run_id: object = object()
        self.pool: dict[str, MatchRecord] = {}
        self.merged = self.parked = 0

    # -- configuration --------------------------------------------------------
    def _path(self, rel: str) -> Path:
        base = self.flow.source_file.parent if self.flow.source_file else Path.cwd()
        return (base / rel).resolve()

    def _config(self) -> MatchConfig:
        from crm2erp.quality.dedupe.config import load_config, preset

        section = self.section
        config = preset(section.preset) if section.preset else load_config(
            self._path(section.config))
        survivorship = config.survivorship
        if section.survivorship is not None:
            over = section.survivorship
            survivorship = survivorship.model_copy(update={
                "default": over.default or survivorship.default,
                "fields": {**survivorship.fields, **over.fields},
                "source_priority": (over.source_priority if over.source_priority is not None
                                    else survivorship.source_priority)})
        # the stage builds the records itself: canonical id in `id`, system in `_source`
        survivorship = survivorship.model_copy(update={
            "source_field": SOURCE_FIELD,
            "target_source": survivorship.target_source or self.flow.target.connection})
        return config.model_copy(update={"id_field": "id", "survivorship": survivorship,
                                         "link": section.link or config.link})

    def _target_mapping(self):
        if self.section.target is None:
            return None
        from crm2erp.mapping import compile_mapping
        from crm2erp.mapping.loader import load_mapping

        spec = load_mapping(self._path(self.section.target.mapping))
        if spec.direction != "inbound" or spec.entity != self.entity:
            raise ConfigError(f"flow {self.flow.flow!r}: dedupe.target.mapping must be an "
                              f"inbound mapping to {self.entity}; {spec.mapping!r} is "
                              f"{spec.direction} to {spec.entity}")
        return compile_mapping(spec, system=self.flow.target.connection)

    # -- per run ------------------------------------------------------------------
    def start(self, ctx: StageContext) -> None:
        if ctx.run_id == self._run_id:
            return
        self._run_id, self.merged, self.parked = ctx.run_id, 0, 0
        self.pool = {}
        if self.section.existing:
            self.pool = {s.canonical_id: from_state(s)
                         for s in self.store.iter_canonical_states(self.entity)}
        if self.target_mapping is not None:
            self.pool.update(load_target_records(
                ctx.target, self.flow.target.connection, self.flow.target.stream,
                self.target_mapping, self.model, ctx.resolver, self.store, self.entity,
                set(self.pool)))
        log.info("flow %s: dedupe matches new records against %d existing %s records",
                 self.flow.flow, len(self.pool), self.entity)

    def training_records(self, runner, batch_size: int = 1000,
                         ) -> tuple[dict[str, MatchRecord], int]:
        """Every record matching can see: the flow's source read through its inbound
        mapping, the hub's canonical records and (``target:``) the target's own.

        Returns id -> record and the number of source rows that could not be
        mapped or validated (they take no part; ``crm2erp quality run`` names them).
        """
        from collections import Counter

        from crm2erp.store.records import BatchCommit

        found: dict[str, MatchRecord] = {}
        if self.section.existing:
            found = {s.canonical_id: from_state(s)
                     for s in self.store.iter_canonical_states(self.entity)}
        runner.mode, unusable = "full_refresh", 0
        for batch in runner.source.read(self.flow.source.stream, None, batch_size=batch_size):
            scratch = BatchCommit(run_id=0, flow=self.flow.flow)
            items = canonicalize(runner, batch.rows, Counter(), scratch)
            unusable += len(scratch.dead_letters) + len(batch.rejected)
            for item in items:   # the source's latest values win over the memory's
                found[item.canonical_id] = from_item(item, self.system)
        if self.target_mapping is not None:
            found.update(load_target_records(
                runner.target, self.flow.target.connection, self.flow.target.stream,
                self.target_mapping, self.model, runner.resolver, self.store, self.entity,
                set(found)))
        return found, unusable

    def finish(self, ctx: StageContext) -> None:
        if self.merged or self.parked:
            log.info("flow %s: dedupe merged %d records, parked %d for review",
                     self.flow.flow, self.merged, self.parked)

    # -- the batch ----------------------------------------------------------------
    def process(self, items: list[Item], ctx: StageContext) -> list[Rejection]:
        self.start(ctx)   # also when process is called outside a managed run
        known = [i for i in items if i.notes.get("state") is not None]
        new = [i for i in items if i.notes.get("state") is None]
        self._refresh_clusters(known, ctx)
        rejections = self._match(new, known, ctx) if new else []
        held = {r.item.source_key for r in rejections}
        for item in items:   # later batches of the run match against this one
            if item.source_key not in held:
                record = from_item(item, self.system)
                record.kind, record.state = "pool", item.notes.get("state")
                if "dedupe" in item.notes or item.canonical_id in self.pool:
                    # a merged record: the canonical record's origin is not this item
                    previous = self.pool.get(item.canonical_id)
                    record.system = previous.system if previous else None
                    record.source_key = previous.source_key if previous else None
                self.pool[item.canonical_id] = record
        return rejections

    def _match(self, new: list[Item], known: list[Item], ctx: StageContext) -> list[Rejection]:
        records: dict[str, MatchRecord] = {}
        items_of: dict[str, list[Item]] = defaultdict(list)
        for item in new:
            items_of[item.canonical_id].append(item)
            records.setdefault(item.canonical_id, from_item(item, self.system))
        existing = {k: v for k, v in self.pool.items() if k not in records}
        known_of: dict[str, list[Item]] = defaultdict(list)
        for item in known:   # records of this batch already synced are existing records
            record = from_item(item, self.system)
            record.kind, record.state = "pool", item.notes.get("state")
            existing[item.canonical_id] = record
            known_of[item.canonical_id].append(item)
        decisions = self.store.dedupe_decisions(self.entity, list(records))
        rejected = [k for k, v in decisions.items() if v == "rejected"]
        pairs: list[PairResult] = []
        left = [r.data for r in records.values()]
        try:
            if len(left) >= 2:
                pairs += self.matcher.dedupe(left, rejected=rejected).pairs(["merge", "review"])
            if existing:
                right = [r.data for r in existing.values()]
                pairs += self._unclaimed(self.matcher.link(left, right, rejected=rejected)
                                         .pairs(["merge", "review"]))
        except ValueError as exc:   # ImplausibleFit: no model is better than a wrong one
            if type(exc).__name__ != "ImplausibleFit":
                raise
            raise ConfigError(f"flow {self.flow.flow!r}: {exc}") from None
        every = {**existing, **records}

        merges, reviews = [], []
        for pair in pairs:
            accepted = decisions.get(pair_key(pair.left_id, pair.right_id)) == "accepted"
            if not (pair.decision == "merge" or accepted):
                reviews.append(pair)
                continue
            clash = [] if accepted else sorted(self._survive(
                every[str(pair.left_id)], every[str(pair.right_id)]).conflicts)
            if clash:   # never merge away an identifier without a steward
                log.info("flow %s: %s %s / %s hold different %s: sent to review",
                         self.flow.flow, self.entity, pair.left_id, pair.right_id,
                         ", ".join(clash))
                pair = replace(pair, decision="review",
                               reason=f"identifier conflict: {', '.join(clash)}")
            (reviews if clash else merges).append(pair)
        groups, target_of = self._cluster(records, merges, set())
        open_reviews = []   # review pairs whose records did not end up merged anyway
        for pair in sorted(reviews, key=lambda p: -p.match_weight):
            a, b = str(pair.left_id), str(pair.right_id)
            together = (groups.find(a) == groups.find(b) if b in records
                        else target_of.get(groups.find(a)) == b)
            if not together:
                open_reviews.append(pair)
        reviews = open_reviews
        held: set[str] = set()
        if self.section.review == "park":
            held = {self._newer(records, str(p.left_id), str(p.right_id)) for p in reviews}
            if held:
                groups, target_of = self._cluster(records, merges, held)

        pair_ids = self.save_pairs(ctx, every, merges, reviews, decisions)
        self._merge(ctx, records, existing, items_of, groups, target_of, held, known_of)
        rejections = []
        for pair in reviews:
            a, b = str(pair.left_id), str(pair.right_id)
            for rid, other in ((a, b), (b, a)):
                if rid in held and rid in records:
                    held.discard(rid)   # one reason per record: its most probable pair
                    pid = pair_ids.get(pair_key(a, b))
                    peer = every[other]
                    where = (f"{peer.system} {peer.source_key}" if peer.source_key
                             else f"{peer.kind} record {other}")
                    clash = (f", {pair.reason}" if pair.reason.startswith("identifier")
                             else "")
                    reason = (f"possible duplicate of {peer.label!r} ({where}, "
                              f"p={pair.match_probability:.2f}{clash}): awaiting review"
                              f"{f', pair #{pid}' if pid else ''} (crm2erp dedupe review)")
                    rejections += [Rejection(i, reason, "parked") for i in items_of[rid]]
        self.parked += len(rejections)
        return rejections

    def _unclaimed(self, pairs: list[PairResult]) -> list[PairResult]:
        """``link: one_to_one`` across batches and runs: leave out the pairs with an existing
        record that a record of this flow's source already holds (cross-reference), so a
        later source record never claims it again; it is created as a record of its own."""
        if self.config.link != "one_to_one" or not pairs:
            return pairs
        claimed = set(self.store.xref_by_canonical(
            self.entity, self.system, sorted({str(p.right_id) for p in pairs})))
        if claimed:
            log.info("flow %s: link one_to_one: %s %s already linked to a %s record; not "
                     "offered to the new records", self.flow.flow, self.entity,
                     ", ".join(sorted(claimed)), self.system)
        return [p for p in pairs if str(p.right_id) not in claimed]

    @staticmethod
    def _newer(records: dict[str, MatchRecord], a: str, b: str) -> str:
        """The record of a review pair to hold: the new one, or the later of two new ones."""
        if b not in records:
            return a
        ra, rb = records[a], records[b]
        return max((ra, rb), key=lambda r: (r.updated_at, r.source_key or "")).id

    def _cluster(self, records, merges: list[PairResult], held: set[str]):
        """Group new records; each group picks at most one existing record (the strongest link)."""
        groups = _Groups()
        for rid in records:
            groups.find(rid)
        links: dict[str, list[tuple[tuple[int, float], str]]] = defaultdict(list)
        for pair in merges:
            a, b = str(pair.left_id), str(pair.right_id)
            if a in held or b in held:
                continue
            if b in records:
                groups.union(a, b)
        for pair in merges:
            a, b = str(pair.left_id), str(pair.right_id)
            if b not in records and a not in held:
                links[groups.find(a)].append((_strength(pair), b))
        target_of = {}
        for root, found in links.items():
            found.sort(reverse=True)
            target_of[root] = found[0][1]
            others = sorted({b for _, b in found[1:]} - {found[0][1]})
            if others:
                log.warning("flow %s: new %s record(s) match several existing records; "
                            "merged into %s, not into %s", self.flow.flow, self.entity,
                            found[0][1], ", ".join(others))
        return groups, target_of

    # -- storing and applying -------------------------------------------------------
    def save_pairs(self, ctx: StageContext, every: dict[str, MatchRecord],
                    merges: list[PairResult], reviews: list[PairResult],
                    decisions: dict, origin: str | None = None) -> dict[tuple[str, str], int]:
        """Store the pairs with both records and the golden-record preview; ``origin``
        (``scan``) marks pairs found among records already synced."""
        if ctx.dry_run:
            return {}
        stored = []
        for pair, status in [(p, "merged") for p in merges] + [(p, "pending") for p in reviews]:
            a, b = str(pair.left_id), str(pair.right_id)
            left, right = pair_key(a, b)
            swap = left != a
            fields = [{"comparison": f.comparison, "field": f.field,
                       "left": f.right if swap else f.left,
                       "right": f.left if swap else f.right, "level": f.level,
                       "label": f.label, "score": f.score, "weight": f.weight}
                      for f in pair.fields.values()]
            side = {rid: {"id": rid, "label": every[rid].label, "kind": every[rid].kind,
                          "system": every[rid].system, "source_key": every[rid].source_key,
                          "record": {k: v for k, v in every[rid].data.items()
                                     if k != SOURCE_FIELD}} for rid in (a, b)}
            if status == "merged" and decisions.get((left, right)) == "accepted":
                status = "accepted"
            golden = self._survive(every[left], every[right])
            named = {left: "left", right: "right"}
            preview = {   # what accepting the pair would produce (the two records)
                "record": {k: v for k, v in golden.values.items()
                           if k not in ("id", SOURCE_FIELD)},
                "from": {k: named.get(str(v)) for k, v in golden.provenance.items()
                         if k not in ("id", SOURCE_FIELD) and v is not None},
                "conflicts": golden.conflicts}
            stored.append(DedupePair(
                entity=self.entity, left_id=left, right_id=right, flow=self.flow.flow,
                status=status, reason=pair.reason, match_probability=pair.match_probability,
                match_weight=pair.match_weight, left_label=every[left].label,
                right_label=every[right].label, run_id=ctx.run_id,
                details={"left": side[left], "right": side[right], "fields": fields,
                         "golden": preview, **({"origin": origin} if origin else {})}))
        return self.store.save_dedupe_pairs(stored) if stored else {}

    def _survive(self, *records: MatchRecord):
        """The golden record the survivorship rules build from ``records`` (not validated)."""
        from crm2erp.quality.dedupe.survivorship import survive

        return survive([r.data for r in records], self.config.survivorship, id_field="id")

    def _overrides(self, member_ids: set[str]) -> dict[str, Any]:
        """A steward's golden-record values (``dedupe decide``/the console) from the
        accepted pairs within these members."""
        found: dict[str, Any] = {}
        stored = self.store.dedupe_overrides(self.entity, member_ids)
        for (a, b), values in sorted(stored.items()):
            if a in member_ids and b in member_ids:
                found.update(values)
        return found

    def golden_record(self, records: list[dict[str, Any]], canonical_id: str):
        """The golden record of a cluster, validated; None (logged) when it does not validate.

        Fields a steward overrode when accepting one of its pairs take the steward's value."""
        from crm2erp.quality.dedupe.survivorship import survive

        golden = survive(records, self.config.survivorship, id_field="id")
        overrides = self._overrides({str(r.get("id")) for r in records})
        if overrides:
            golden.values = deep_merge(golden.values, {})   # the members' dicts untouched
        for path, value in overrides.items():
            set_path(golden.values, path, value)
            golden.provenance[path] = None
            golden.conflicts.pop(path, None)
        for name, found in golden.conflicts.items():
            log.warning("flow %s: %s %s: members disagree on identifier %s (%s); kept %r "
                        "from %s, the others need a steward", self.flow.flow, self.entity,
                        canonical_id, name, ", ".join(map(str, found)), golden.values[name],
                        golden.provenance[name])
        values = {k: v for k, v in golden.values.items() if k != SOURCE_FIELD}
        values["id"] = canonical_id
        try:
            return golden, self.model.model_validate(values)
        except ValidationError as exc:
            log.warning("flow %s: golden record of %s %s does not validate (%s); each "
                        "record keeps its own values", self.flow.flow, self.entity,
                        canonical_id, exc.errors()[0]["msg"])
            return golden, None

    def provenance(self, golden, by_id: dict[str, DedupeMember]) -> list[Provenance]:
        rules = self.config.survivorship
        out = []
        for name, member_id in golden.provenance.items():
            if name in ("id", SOURCE_FIELD):
                continue
            member = by_id.get(str(member_id)) if member_id is not None else None
            out.append(Provenance(name, None if member_id is None else str(member_id),
                                  member.system if member else None,
                                  member.source_key if member else None,
                                  rules.rule_for(name)))
        return out

    def member(self, record: MatchRecord, canonical_id: str) -> DedupeMember:
        system, source_key = record.system, record.source_key
        if record.kind == "pool" and source_key is None:
            origin = self.store.external_ids(self.entity, self.system, [record.id])
            if record.id in origin:
                system, source_key = self.system, origin[record.id]
        return DedupeMember(record.id, canonical_id, system, source_key, record.data,
                            self.flow.flow)

    def _merge(self, ctx, records, existing, items_of, groups, target_of, held,
               known_of) -> None:
        components: dict[str, list[str]] = defaultdict(list)
        for rid in records:
            if rid not in held:
                components[groups.find(rid)].append(rid)
        clusters = [(members, target_of.get(root)) for root, members in components.items()
                    if len(members) >= 2 or target_of.get(root) is not None]
        earlier = self.store.dedupe_members(self.entity, [t for _, t in clusters if t])
        for members, ext in clusters:
            canonical = ext or min(members, key=lambda m: (records[m].updated_at,
                                                           records[m].source_key or ""))
            cluster = [self.member(records[m], canonical) for m in members]
            if ext is not None:   # members of earlier merges keep their own values
                ids = {m.member_id for m in cluster}
                stored = [m for m in earlier.get(ext, []) if m.member_id not in ids]
                if ext not in {m.member_id for m in stored}:
                    cluster.append(self.member(existing[ext], canonical))
                cluster += stored
            golden, record = self.golden_record([m.data for m in cluster], canonical)
            state = existing[ext].state if ext is not None else None
            for item in [i for m in members for i in items_of[m]] + known_of.get(canonical, []):
                item.canonical_id = canonical
                if record is not None:
                    item.record = record
                if state is not None:
                    item.notes["state"] = state
                item.notes["dedupe"] = {"canonical_id": canonical,
                                        "members": [m.member_id for m in cluster]}
            log.info("flow %s: merged %s %s into %s %r (%s)", self.flow.flow, self.entity,
                     ", ".join(m for m in members if m != canonical) or canonical,
                     existing[ext].kind + " record" if ext else "new record", canonical,
                     "golden record by survivorship" if record is not None
                     else "golden record invalid, values kept")
            self.merged += len([m for m in members if m != canonical])
            if not ctx.dry_run:
                by_id = {m.member_id: m for m in cluster}
                self.store.save_dedupe_merge(self.entity, self.flow.flow, ctx.run_id,
                                             canonical, cluster,
                                             self.provenance(golden, by_id))

    def _refresh_clusters(self, known: list[Item], ctx: StageContext) -> None:
        """A changed member of a merged cluster: rebuild the golden record from all members."""
        if not known:
            return
        clusters = self.store.dedupe_members(self.entity, [i.canonical_id for i in known])
        for item in known:
            members = clusters.get(item.canonical_id)
            mine = next((m for m in members or [] if m.system == self.system
                         and m.source_key == item.source_key), None)
            if mine is None:
                continue
            current = item.record.model_dump(mode="json")
            flat, data = flatten(current), dict(mine.data)
            settlement = item.notes.get("settlement")
            for path in (settlement.accepted if settlement is not None else flat):
                set_path(data, path, flat.get(path))
            data.update(id=mine.member_id, updated_at=current.get("updated_at"))
            data[SOURCE_FIELD] = self.system
            updated = DedupeMember(mine.member_id, item.canonical_id, mine.system,
                                   mine.source_key, data, self.flow.flow)
            cluster = [updated] + [m for m in members if m.member_id != mine.member_id]
            golden, record = self.golden_record([m.data for m in cluster], item.canonical_id)
            if record is not None:
                item.record = record
            if not ctx.dry_run:
                self.store.save_dedupe_merge(
                    self.entity, self.flow.flow, ctx.run_id, item.canonical_id, [updated],
                    self.provenance(golden, {m.member_id: m for m in cluster}))

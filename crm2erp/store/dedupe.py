"""State-store methods of the deduplication stage (tables from migration 0004).

Three tables, defined in :mod:`crm2erp.store.tables`:

* ``dedupe_pairs`` - every candidate pair the stage merged or sent to review,
  one row per unordered pair of record ids (``left_id < right_id``), with the
  match probability, the per-field comparison and the steward's decision.
  A decision (``accepted`` / ``rejected``) is never overwritten by a later
  run: it is what the stage reuses instead of asking again;
* ``dedupe_members`` - which record was merged into which canonical record,
  with the member's last values, so the golden record can be rebuilt when a
  member changes later;
* ``dedupe_provenance`` - for every field of a golden record, the member that
  supplied the surviving value;
* ``dedupe_models`` (migration 0007) - the matching models ``crm2erp dedupe
  train`` fitted per flow, newest last; runs use the newest.

:class:`DedupeStoreMixin` adds the methods to :class:`~crm2erp.store.StateStore`.
"""

from __future__ import annotations

__all__ = ["DedupePair", "DedupeMember", "DedupeModel", "Provenance", "DedupeStoreMixin",
           "DECISIONS"]

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from crm2erp import jsonutil
from crm2erp.errors import ConfigError
from crm2erp.store import fieldmemory
from crm2erp.store.batch import upsert
from crm2erp.store.names import NameIds
from crm2erp.store.records import CanonicalState
from crm2erp.store.tables import (
    DEDUPE_PAIR_STATUSES,
    canonical_records,
    dedupe_members,
    dedupe_models,
    dedupe_pairs,
    dedupe_provenance,
    xref,
)
from crm2erp.store.types import inserted_id, utcnow

#: the statuses a steward sets; runs never overwrite them
DECISIONS = ("accepted", "rejected")
_CHUNK = 500


@dataclass(frozen=True)
class DedupePair:
    """One scored pair; ``details`` holds both records' values and the field scores."""

    entity: str
    left_id: str
    right_id: str
    flow: str
    status: str
    reason: str
    match_probability: float
    match_weight: float
    left_label: str | None = None
    right_label: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None
    id: int | None = None
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    note: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.left_id, self.right_id)


@dataclass(frozen=True)
class DedupeMember:
    """A record merged into ``canonical_id``: where it came from and its values."""

    member_id: str
    canonical_id: str
    system: str | None
    source_key: str | None
    data: dict[str, Any]
    flow: str = ""
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class Provenance:
    """Which member supplied one surviving field of a golden record, under which rule."""

    field: str
    member_id: str | None
    system: str | None
    source_key: str | None
    rule: str


@dataclass(frozen=True)
class DedupeModel:
    """A trained matching model: m, u and lambda (JSON ``model``), when and on how much."""

    flow: str
    entity: str
    n_records: int
    n_pairs: int
    model: dict[str, Any]
    id: int | None = None
    trained_at: dt.datetime | None = None


def pair_key(a: str, b: str) -> tuple[str, str]:
    """The stored orientation of an unordered pair."""
    a, b = str(a), str(b)
    return (a, b) if a <= b else (b, a)


def _pair(row) -> DedupePair:
    values = row._asdict()
    values["details"] = jsonutil.loads(values["details"]) if values["details"] else {}
    return DedupePair(**values)


class DedupeStoreMixin:
    """Pairs, decisions, cluster members and provenance of the dedupe stage."""

    engine: sa.Engine
    names: NameIds

    # -- pairs ----------------------------------------------------------------
    def save_dedupe_pairs(self, pairs: Sequence[DedupePair]) -> dict[tuple[str, str], int]:
        """Insert or refresh pairs; a steward's decision on a pair is kept as it is.

        Returns pair key -> pair id. Scores and values are refreshed, so the
        review screen shows the records as they were last seen.
        """
        now = utcnow()
        ids: dict[tuple[str, str], int] = {}
        with self.engine.begin() as conn:
            for pair in pairs:
                if pair.status not in DEDUPE_PAIR_STATUSES:
                    raise ValueError(f"unknown dedupe pair status {pair.status!r}")
                left, right = pair_key(pair.left_id, pair.right_id)
                values = {"flow": pair.flow, "reason": pair.reason[:64],
                          "match_probability": float(pair.match_probability),
                          "match_weight": float(pair.match_weight),
                          "left_label": (pair.left_label or "")[:191] or None,
                          "right_label": (pair.right_label or "")[:191] or None,
                          "details": jsonutil.dumps(pair.details), "run_id": pair.run_id,
                          "updated_at": now}
                found = conn.execute(sa.select(dedupe_pairs.c.id, dedupe_pairs.c.status,
                                               dedupe_pairs.c.details).where(
                    dedupe_pairs.c.entity == pair.entity, dedupe_pairs.c.left_id == left,
                    dedupe_pairs.c.right_id == right)).first()
                if found is None:
                    result = conn.execute(dedupe_pairs.insert().values(
                        entity=pair.entity, left_id=left, right_id=right, status=pair.status,
                        created_at=now, **values))
                    ids[(left, right)] = inserted_id(result)
                    continue
                if found.status not in DECISIONS:
                    values["status"] = pair.status
                kept = (jsonutil.loads(found.details) if found.details else {}).get("overrides")
                if kept:   # a steward's golden-record overrides outlive the refresh
                    values["details"] = jsonutil.dumps({**pair.details, "overrides": kept})
                conn.execute(dedupe_pairs.update().where(dedupe_pairs.c.id == found.id)
                             .values(**values))
                ids[(left, right)] = int(found.id)
        return ids

    def _decided_rows(self, entity: str, record_ids: Iterable[str],
                      statuses: Sequence[str]) -> Iterator:
        """Rows (left_id, right_id, status, details) of pairs in ``statuses``
        touching any of ``record_ids``."""
        wanted = sorted({str(i) for i in record_ids})
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start:start + _CHUNK]
                yield from conn.execute(sa.select(
                    dedupe_pairs.c.left_id, dedupe_pairs.c.right_id, dedupe_pairs.c.status,
                    dedupe_pairs.c.details).where(
                    dedupe_pairs.c.entity == entity, dedupe_pairs.c.status.in_(statuses),
                    sa.or_(dedupe_pairs.c.left_id.in_(chunk), dedupe_pairs.c.right_id.in_(chunk))))

    def dedupe_decisions(self, entity: str,
                         record_ids: Iterable[str]) -> dict[tuple[str, str], str]:
        """Steward decisions on pairs touching any of ``record_ids``: key -> status."""
        return {(row.left_id, row.right_id): row.status
                for row in self._decided_rows(entity, record_ids, DECISIONS)}

    def dedupe_pairs(self, flow: str | None = None, status: str | Sequence[str] | None = None,
                     limit: int = 100) -> list[DedupePair]:
        """Stored pairs, oldest first, filtered by flow and status (``review`` = ``pending``)."""
        query = sa.select(dedupe_pairs).order_by(dedupe_pairs.c.id).limit(limit)
        if flow is not None:
            query = query.where(dedupe_pairs.c.flow == flow)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            statuses = ["pending" if one == "review" else one for one in statuses]
            for one in statuses:
                if one not in DEDUPE_PAIR_STATUSES:
                    raise ConfigError(f"unknown pair status {one!r}; use one of "
                                      f"{', '.join(DEDUPE_PAIR_STATUSES)}")
            query = query.where(dedupe_pairs.c.status.in_(statuses))
        with self.engine.connect() as conn:
            return [_pair(row) for row in conn.execute(query)]

    def get_dedupe_pair(self, pair_id: int) -> DedupePair:
        """One pair by id; ConfigError when there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(dedupe_pairs)
                               .where(dedupe_pairs.c.id == pair_id)).first()
        if row is None:
            raise ConfigError(f"no duplicate pair #{pair_id}; see crm2erp dedupe list")
        return _pair(row)

    def decide_dedupe_pair(self, pair_id: int, decision: str, by: str,
                           note: str | None = None,
                           overrides: dict[str, Any] | None = None) -> DedupePair:
        """Store a steward's ``accepted`` / ``rejected`` on a pair (a later call changes it).

        ``overrides`` (field path -> value, with ``accepted``): the steward's values
        for fields of the golden record; the merge uses them instead of survivorship's.
        """
        if decision not in DECISIONS:
            raise ConfigError(f"unknown decision {decision!r}; use accepted or rejected")
        details = dict(self.get_dedupe_pair(pair_id).details)
        details.pop("overrides", None)
        if overrides and decision == "accepted":
            details["overrides"] = dict(overrides)
        with self.engine.begin() as conn:
            conn.execute(dedupe_pairs.update().where(dedupe_pairs.c.id == pair_id).values(
                status=decision, decided_by=by[:191], decided_at=utcnow(), note=note,
                details=jsonutil.dumps(details), updated_at=utcnow()))
        return self.get_dedupe_pair(pair_id)

    def annotate_dedupe_pair(self, pair_id: int, **details: Any) -> DedupePair:
        """Add entries to a pair's details (``applied``: the merge an accepted scanned
        pair made in the target), keeping its status and decision."""
        merged = {**self.get_dedupe_pair(pair_id).details, **details}
        with self.engine.begin() as conn:
            conn.execute(dedupe_pairs.update().where(dedupe_pairs.c.id == pair_id).values(
                details=jsonutil.dumps(merged), updated_at=utcnow()))
        return self.get_dedupe_pair(pair_id)

    def dedupe_overrides(self, entity: str,
                         record_ids: Iterable[str]) -> dict[tuple[str, str], dict[str, Any]]:
        """The golden-record overrides of accepted pairs touching ``record_ids``."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self._decided_rows(entity, record_ids, ["accepted"]):
            overrides = (jsonutil.loads(row.details) if row.details else {}).get("overrides")
            if overrides:
                found[(row.left_id, row.right_id)] = overrides
        return found

    # -- members and provenance -------------------------------------------------
    def save_dedupe_merge(self, entity: str, flow: str, run_id: int | None, canonical_id: str,
                          members: Sequence[DedupeMember],
                          provenance: Sequence[Provenance]) -> None:
        """Remember a cluster's members and the provenance of its golden record."""
        now = utcnow()
        member_rows = [{"entity": entity, "member_id": m.member_id,
                        "canonical_id": canonical_id, "system": m.system,
                        "source_key": m.source_key, "flow": flow,
                        "data": jsonutil.dumps(m.data), "run_id": run_id, "updated_at": now}
                       for m in members]
        with self.engine.begin() as conn:
            upsert(conn, dedupe_members, member_rows, key=("entity", "member_id"),
                   update=("canonical_id", "system", "source_key", "flow", "data", "run_id",
                           "updated_at"))
            conn.execute(dedupe_provenance.delete().where(
                dedupe_provenance.c.entity == entity,
                dedupe_provenance.c.canonical_id == canonical_id))
            if provenance:
                conn.execute(dedupe_provenance.insert(), [
                    {"entity": entity, "canonical_id": canonical_id, "field": p.field[:191],
                     "member_id": p.member_id, "system": p.system, "source_key": p.source_key,
                     "rule": p.rule, "run_id": run_id, "updated_at": now}
                    for p in provenance])

    def dedupe_members(self, entity: str,
                       canonical_ids: Iterable[str]) -> dict[str, list[DedupeMember]]:
        """Canonical id -> its merged members, for the ids that are clusters."""
        found: dict[str, list[DedupeMember]] = {}
        wanted = sorted({str(i) for i in canonical_ids})
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                query = (sa.select(dedupe_members)
                         .where(dedupe_members.c.entity == entity,
                                dedupe_members.c.canonical_id.in_(wanted[start:start + _CHUNK]))
                         .order_by(dedupe_members.c.member_id))
                for row in conn.execute(query):
                    found.setdefault(row.canonical_id, []).append(DedupeMember(
                        row.member_id, row.canonical_id, row.system, row.source_key,
                        jsonutil.loads(row.data), row.flow, row.updated_at))
        return found

    def dedupe_provenance(self, entity: str, canonical_id: str) -> dict[str, Provenance]:
        """Field -> where the golden record's value came from."""
        query = sa.select(dedupe_provenance).where(
            dedupe_provenance.c.entity == entity,
            dedupe_provenance.c.canonical_id == canonical_id)
        with self.engine.connect() as conn:
            return {row.field: Provenance(row.field, row.member_id, row.system, row.source_key,
                                          row.rule) for row in conn.execute(query)}

    def known_dedupe_pairs(self, entity: str,
                           record_ids: Iterable[str]) -> dict[tuple[str, str], str]:
        """Stored pairs of any status touching any of ``record_ids``: key -> status."""
        return {(row.left_id, row.right_id): row.status
                for row in self._decided_rows(entity, record_ids, DEDUPE_PAIR_STATUSES)}

    def merge_canonical(self, entity: str, loser: str, survivor: str, *, target_system: str,
                        archived_mark: str) -> int:
        """Fold canonical record ``loser`` into ``survivor`` after an accepted merge.

        In one transaction: every cross-reference row of ``loser`` outside
        ``target_system`` (its source records) is pointed at ``survivor``; its
        target row keeps ``loser`` and gets ``archived_mark`` as payload hash (the
        target record was archived: nothing writes to it again); the loser's
        canonical memory and provenance go (its values live on as a cluster member).
        Returns the number of repointed rows.
        """
        numbers = self.names.ids([entity, target_system])
        mine = (xref.c.entity_id == numbers[entity]) & (xref.c.canonical_id == loser)
        target = xref.c.system_id == numbers[target_system]
        with self.engine.begin() as conn:
            moved = conn.execute(xref.update().where(mine, ~target)
                                 .values(canonical_id=survivor)).rowcount
            conn.execute(xref.update().where(mine, target)
                         .values(payload_hash=archived_mark))
            conn.execute(canonical_records.delete().where(
                canonical_records.c.entity_id == numbers[entity],
                canonical_records.c.canonical_id == loser))
            conn.execute(dedupe_provenance.delete().where(
                dedupe_provenance.c.entity == entity,
                dedupe_provenance.c.canonical_id == loser))
        return int(moved)

    # -- trained models ----------------------------------------------------------
    def save_dedupe_model(self, model: DedupeModel) -> DedupeModel:
        """Store a trained model; it becomes the flow's current one. Returns it with id/date."""
        now = utcnow()
        with self.engine.begin() as conn:
            result = conn.execute(dedupe_models.insert().values(
                flow=model.flow, entity=model.entity, n_records=model.n_records,
                n_pairs=model.n_pairs, model=jsonutil.dumps(model.model), trained_at=now))
            new_id = inserted_id(result)
        return DedupeModel(model.flow, model.entity, model.n_records, model.n_pairs,
                           model.model, new_id, now)

    def dedupe_model(self, flow: str) -> DedupeModel | None:
        """The flow's newest trained model, or None when it was never trained."""
        query = (sa.select(dedupe_models).where(dedupe_models.c.flow == flow)
                 .order_by(dedupe_models.c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return DedupeModel(row.flow, row.entity, row.n_records, row.n_pairs,
                           jsonutil.loads(row.model), row.id, row.trained_at)

    def iter_canonical_states(self, entity: str, chunk: int = 1000) -> Iterator[CanonicalState]:
        """Every stored canonical record of ``entity``, in the order of its stored id
        (:class:`crm2erp.store.types.CanonicalId`), a chunk per query."""
        last: str | None = None
        entity_id = self.names.known(entity)
        while entity_id is not None:
            query = (sa.select(canonical_records)
                     .where(canonical_records.c.entity_id == entity_id)
                     .order_by(canonical_records.c.canonical_id).limit(chunk))
            if last is not None:
                query = query.where(canonical_records.c.canonical_id > last)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            for row in rows:
                yield CanonicalState(entity, row.canonical_id, *fieldmemory.decode(row.memory))
            last = rows[-1].canonical_id

"""State-store tables and methods of the data-quality layer.

Two tables (created by migration 0002): ``quality_results``, one row per rule
and run with how many rows it evaluated and failed plus sample values, and
``reconciliations``, one row per ``crm2erp reconcile`` with its counts and the
(capped) differences as JSON. :class:`QualityStoreMixin` adds their methods to
:class:`~crm2erp.store.StateStore`; the tables sit on the store's metadata so
the schema check covers them.
"""

from __future__ import annotations

__all__ = [
    "quality_results",
    "reconciliations",
    "QualityResult",
    "Reconciliation",
    "QualityStoreMixin",
    "RECONCILE_COUNTS",
]

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from crm2erp import jsonutil
from crm2erp.store.names import NameIds
from crm2erp.store.records import DeadLetter
from crm2erp.store.tables import dead_letters, metadata, xref
from crm2erp.store.types import UTCDateTime, inserted_id, utcnow

RECONCILE_COUNTS = ("source_count", "target_count", "matched", "missing_in_target",
                    "only_in_target", "different", "orphaned", "unmapped")

quality_results = sa.Table(
    "quality_results", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("rule", sa.String(191), nullable=False),
    sa.Column("expectation", sa.String(128), nullable=False),
    sa.Column("column_name", sa.String(191), nullable=True),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("evaluated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("sample", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("run_id", "rule"),
    sa.Index(None, "flow", "run_id"),
)

reconciliations = sa.Table(
    "reconciliations", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=False),
    *(sa.Column(name, sa.Integer, nullable=False, server_default="0")
      for name in RECONCILE_COUNTS),
    sa.Column("details", sa.Text, nullable=True),
    sa.Index(None, "flow", "id"),
)


@dataclass(frozen=True)
class QualityResult:
    """One rule's outcome over one run (all its batches together)."""

    rule: str
    expectation: str
    column: str | None
    severity: str
    evaluated: int
    failed: int
    success: bool
    sample: list[Any] = field(default_factory=list)
    run_id: int | None = None
    flow: str | None = None


@dataclass(frozen=True)
class Reconciliation:
    """A stored comparison of a flow's source and target."""

    id: int
    flow: str
    entity: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime
    counts: dict[str, int]
    details: dict[str, Any]


class QualityStoreMixin:
    """Quality results, reconciliations and the reads the steward report needs."""

    engine: sa.Engine
    names: NameIds

    # -- quality results ---------------------------------------------------
    def save_quality_results(self, run_id: int, flow: str,
                             results: Sequence[QualityResult]) -> None:
        """Replace the results of ``run_id`` (the stage saves its running totals per batch)."""
        now = utcnow()
        rows = [{"run_id": run_id, "flow": flow, "rule": r.rule[:191],
                 "expectation": r.expectation[:128], "column_name": r.column,
                 "severity": r.severity, "evaluated": r.evaluated, "failed": r.failed,
                 "success": r.success, "sample": jsonutil.dumps(r.sample),
                 "created_at": now} for r in results]
        with self.engine.begin() as conn:
            conn.execute(quality_results.delete().where(quality_results.c.run_id == run_id))
            if rows:
                conn.execute(quality_results.insert(), rows)

    def quality_results(self, run_id: int) -> list[QualityResult]:
        """The rules' outcomes of one run, worst first."""
        query = (sa.select(quality_results).where(quality_results.c.run_id == run_id)
                 .order_by(quality_results.c.failed.desc(), quality_results.c.rule))
        with self.engine.connect() as conn:
            return [_result(row) for row in conn.execute(query)]

    def quality_history(self, flow: str, run_ids: Iterable[int]) -> dict[int, dict[str, int]]:
        """Run id -> severity -> failed rows, for the chart over recent runs."""
        ids = list(run_ids)
        if not ids:
            return {}
        query = (sa.select(quality_results.c.run_id, quality_results.c.severity,
                           sa.func.sum(quality_results.c.failed))
                 .where(quality_results.c.flow == flow, quality_results.c.run_id.in_(ids))
                 .group_by(quality_results.c.run_id, quality_results.c.severity))
        history: dict[int, dict[str, int]] = {i: {} for i in ids}
        with self.engine.connect() as conn:
            for run_id, severity, failed in conn.execute(query):
                history[run_id][severity] = int(failed or 0)
        return history

    def run_dead_letters(self, run_id: int, stage: str | None = None,
                         limit: int = 100) -> list[DeadLetter]:
        """Dead letters last written by ``run_id`` (optionally of one stage)."""
        query = (sa.select(dead_letters).where(dead_letters.c.run_id == run_id)
                 .order_by(dead_letters.c.id).limit(limit))
        if stage is not None:
            query = query.where(dead_letters.c.stage == stage)
        with self.engine.connect() as conn:
            return [self._dead_letter(row) for row in conn.execute(query)]  # type: ignore[attr-defined]

    # -- xref scans (reconciliation) ----------------------------------------
    def iter_xref(self, entity: str, system: str,
                  chunk: int = 1000) -> Iterator[tuple[str, str]]:
        """Every (external id, canonical id) of one entity in one system, in external
        id order."""
        last: str | None = None
        entity_id, system_id = self.names.known(entity), self.names.known(system)
        while entity_id is not None and system_id is not None:
            query = (sa.select(xref.c.external_id, xref.c.canonical_id)
                     .where(xref.c.entity_id == entity_id, xref.c.system_id == system_id)
                     .order_by(xref.c.external_id).limit(chunk))
            if last is not None:
                query = query.where(xref.c.external_id > last)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            for row in rows:
                yield row.external_id, row.canonical_id
            last = rows[-1].external_id

    # -- reconciliations ----------------------------------------------------
    def save_reconciliation(self, flow: str, entity: str, status: str,
                            started_at: dt.datetime, counts: dict[str, int],
                            details: dict[str, Any]) -> int:
        values = {name: int(counts.get(name, 0)) for name in RECONCILE_COUNTS}
        with self.engine.begin() as conn:
            result = conn.execute(reconciliations.insert().values(
                flow=flow, entity=entity, status=status, started_at=started_at,
                finished_at=utcnow(), details=jsonutil.dumps(details), **values))
            return inserted_id(result)

    def latest_reconciliation(self, flow: str) -> Reconciliation | None:
        query = (sa.select(reconciliations).where(reconciliations.c.flow == flow)
                 .order_by(reconciliations.c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        values = row._asdict()
        return Reconciliation(
            id=values["id"], flow=values["flow"], entity=values["entity"],
            status=values["status"], started_at=values["started_at"],
            finished_at=values["finished_at"],
            counts={name: values[name] for name in RECONCILE_COUNTS},
            details=jsonutil.loads(values["details"]) if values["details"] else {})

    # -- optional tables of other parts ---------------------------------------
    def has_table(self, name: str) -> bool:
        return sa.inspect(self.engine).has_table(name)


def _result(row) -> QualityResult:
    return QualityResult(rule=row.rule, expectation=row.expectation, column=row.column_name,
                         severity=row.severity, evaluated=row.evaluated, failed=row.failed,
                         success=bool(row.success),
                         sample=jsonutil.loads(row.sample) if row.sample else [],
                         run_id=row.run_id, flow=row.flow)

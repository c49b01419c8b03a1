"""Plain frozen records the state store takes and returns.

The store never hands out ORM objects or rows: these dataclasses are detached
values, so callers meet no lazy loading or expired-session surprises, and
every datetime in them is aware UTC.
"""

from __future__ import annotations

__all__ = [
    "RunRecord",
    "XrefEntry",
    "DeadLetter",
    "XrefUpsert",
    "NewDeadLetter",
    "BatchCommit",
    "DeadLetterWrite",
    "BatchResult",
]

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from crm2erp.contract import Cursor
from crm2erp.store.tables import COUNT_FIELDS


@dataclass(frozen=True)
class RunRecord:
    """One run of a flow, with its counters."""

    id: int
    flow: str
    mode: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    parked: int = 0
    deleted: int = 0
    message: str | None = None
    owner: str | None = None   # lock owner (host:pid:random) of the process running it
    warnings: str | None = None   # one per line

    @property
    def warning_list(self) -> list[str]:
        """The run's warnings (a ``from:`` path no record had, say)."""
        return self.warnings.splitlines() if self.warnings else []

    @property
    def counts(self) -> dict[str, int]:
        """The counters by name (read, created, updated, ...)."""
        return {name: getattr(self, name) for name in COUNT_FIELDS}

    @property
    def duration(self) -> dt.timedelta | None:
        """How long the run took, or None while it is running."""
        return None if self.finished_at is None else self.finished_at - self.started_at


@dataclass(frozen=True)
class XrefEntry:
    """One id cross-reference: what ``system`` calls the canonical record."""

    entity: str
    system: str
    external_id: str
    canonical_id: str
    payload_hash: str | None


@dataclass(frozen=True)
class DeadLetter:
    """A source record that could not go through, with why and how often."""

    id: int
    flow: str
    run_id: int | None
    stage: str
    source_key: str
    error: str
    payload: Any
    attempts: int
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class XrefUpsert:
    """Insert or update the cross-reference of one system record."""

    entity: str
    system: str
    external_id: str
    canonical_id: str
    payload_hash: str | None = None


@dataclass(frozen=True)
class NewDeadLetter:
    """A record that failed in this batch (``stage="parked"`` parks it)."""

    stage: str
    source_key: str
    error: str
    payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class CanonicalState:
    """The last canonical state of a record, and when each field last changed.

    ``field_times`` is the hub's per-field memory (who changed each field last,
    when, and what each system last sent); read it with
    :class:`crm2erp.store.fieldmemory.FieldMemory` (the stored format is described there).
    """

    entity: str
    canonical_id: str
    data: dict[str, Any]
    field_times: dict[str, Any]


@dataclass(frozen=True)
class ConflictRecord:
    """Two systems changed the same field; ``winner`` is the system whose value stayed."""

    entity: str
    canonical_id: str
    field: str
    system: str
    incoming: Any
    kept: Any
    winner: str
    rule: str


@dataclass
class BatchCommit:
    """Everything one sync batch changes in the state store, written atomically."""

    run_id: int | None
    flow: str
    xref: list[XrefUpsert] = field(default_factory=list)
    dead_letters: list[NewDeadLetter] = field(default_factory=list)
    resolved_keys: list[str] = field(default_factory=list)
    watermark: tuple[str, Cursor] | None = None
    counts: dict[str, int] = field(default_factory=dict)
    canonical: list[CanonicalState] = field(default_factory=list)
    conflicts: list[ConflictRecord] = field(default_factory=list)


@dataclass(frozen=True)
class DeadLetterWrite:
    """What happened to one :class:`NewDeadLetter`.

    ``new`` is true when a row was added; otherwise the key's open or parked
    entry was updated and ``payload_changed`` says whether the record differs
    from the one that failed before (true for new entries too).
    """

    id: int
    source_key: str
    new: bool
    payload_changed: bool


@dataclass(frozen=True)
class BatchResult:
    """What :meth:`StateStore.commit_batch` did (callers may ignore it)."""

    dead_letters: list[DeadLetterWrite]
    resolved: int

"""What a run produces: its result, the writes it made, and the batch bookkeeping
shared by every step (a record's key, a dead letter held in the batch's commit).
"""

from __future__ import annotations

__all__ = ["Change", "RunResult", "COUNTERS", "DELETED_MARK", "record_key", "hold",
           "new_dead_letters"]

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crm2erp.contract import Row, key_text
from crm2erp.store import BatchCommit, NewDeadLetter

#: Payload of a dead letter for a delete that failed: the source key that was deleted.
DELETED_MARK = "_crm2erp_deleted"

COUNTERS = ("read", "created", "updated", "unchanged", "skipped", "failed", "parked",
            "deleted")


def record_key(row: Row, fields: Sequence[str]) -> str:
    """A row's key: the :func:`~crm2erp.contract.key_text` of its ``fields``' values."""
    return key_text([row.get(f) for f in fields])


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


def hold(commit: BatchCommit, counts: Counter, stage: str, key: str, reason: str,
         row: Row) -> None:
    """A record that cannot go on: a dead letter of ``stage`` in the batch's commit."""
    counts["parked" if stage == "parked" else "failed"] += 1
    commit.dead_letters.append(NewDeadLetter(stage, key, reason, row))


def new_dead_letters(outcome, commit: BatchCommit) -> int:
    """Dead letters of this batch that are news: a new record, or a changed one.

    The same failing record read again (through the lookback, or a parked
    record retried) is already known and is not counted again.
    """
    if outcome is None:
        return len(commit.dead_letters)
    return sum(1 for write in outcome.dead_letters if write.new or write.payload_changed)

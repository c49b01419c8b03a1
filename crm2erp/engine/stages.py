"""Batch stages between validation and the load: quality gate, deduplication.

A stage sees the batch's canonical records together, so it can work on the
whole batch at once (a Great Expectations run, blocking and scoring for
duplicates). It returns the records it rejects, with the reason, and may
point a record at another canonical id (a duplicate of a record already
synced). A stage that must stop the run before anything reaches the target,
such as a quality threshold breach, raises :class:`crm2erp.errors.FatalError`.

Stages are built per flow by the factories in ``FACTORIES``: each factory
returns a stage, or ``None`` when the flow does not ask for it.
"""

from __future__ import annotations

__all__ = ["Item", "Rejection", "StageContext", "BatchStage", "build_stages", "FACTORIES",
           "RUN_HOOKS", "run_hooks"]

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from crm2erp.connectors.base import Row

log = logging.getLogger(__name__)


@dataclass
class Item:
    """One record on its way through a batch."""

    source_key: str
    source_row: Row
    canonical_id: str
    record: Any                       # the validated canonical model instance
    target_row: Row | None = None
    target_key: str | None = None
    target_id: str | None = None
    hash: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    item: Item
    reason: str
    stage: str


@dataclass
class StageContext:
    flow: Any                 # the FlowSpec
    run_id: int | None
    store: Any                # the StateStore
    resolver: Any
    target: Any               # the target connector
    dry_run: bool
    rows_read: int = 0        # rows read so far in this run (for thresholds)


class BatchStage(Protocol):
    name: str

    def process(self, items: list[Item], ctx: StageContext) -> list[Rejection]: ...

    def finish(self, ctx: StageContext) -> None: ...


#: "module:function" factories, each ``factory(flow, store) -> BatchStage | None``,
#: in the order the stages run.
FACTORIES: list[str] = [
    "crm2erp.quality.gx.stage:quality_stage",
    "crm2erp.quality.dedupe.stage:dedupe_stage",
]

#: "module:function" hooks called after every run has been closed in the
#: store, each ``hook(runner, result)``; a failing hook is logged, never fatal.
RUN_HOOKS: list[str] = [
    "crm2erp.console.export:write_run_report",
    "crm2erp.engine.notify:notify_dead_letters",
]


def build_stages(flow, store) -> list[BatchStage]:
    stages = []
    for spec in FACTORIES:
        module_name, _, attr = spec.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        stage = factory(flow, store)
        if stage is not None:
            stages.append(stage)
    return stages


def run_hooks(runner, result) -> None:
    """Call every ``RUN_HOOKS`` entry; a hook's failure is logged, not raised."""
    for spec in RUN_HOOKS:
        module_name, _, attr = spec.partition(":")
        try:
            getattr(importlib.import_module(module_name), attr)(runner, result)
        except Exception:
            log.warning("run hook %s failed for flow %s run %s", spec, result.flow,
                        result.run_id, exc_info=True)

"""Batch stages between validation and the load: quality gate, deduplication.

A stage sees the batch's canonical records together, so it can work on the
whole batch at once (a Great Expectations run, blocking and scoring for
duplicates). It returns the records it rejects, with the reason, and may
point a record at another canonical id (a duplicate of a record already
synced). A stage that must stop the run before anything reaches the target,
such as a quality threshold breach, raises :class:`crm2erp.errors.FatalError`.

Stages and run hooks are plug-ins found by entry point (:mod:`crm2erp.registry`):
group ``crm2erp.stages`` names factories, each ``factory(flow, store)`` returning
a stage or ``None`` when the flow does not ask for it; group ``crm2erp.hooks``
names functions ``hook(runner, result)`` called after every run. A stage's
``start(ctx)`` is called when a run starts (``ctx.run_id`` is the new run's),
``process`` once per batch and ``finish`` when the run's batches are done.
"""

from __future__ import annotations

__all__ = ["Item", "Rejection", "StageContext", "BatchStage", "StageFactory", "RunHook",
           "build_stages", "start_stages", "run_hooks"]

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from crm2erp import registry
from crm2erp.contract import Connector, Row

if TYPE_CHECKING:
    from crm2erp.engine.resolver import StoreResolver
    from crm2erp.mapping.models import FlowSpec
    from crm2erp.store.state import StateStore

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
    """What a stage may use during a run: the flow, its run, the store and the target."""

    flow: FlowSpec
    run_id: int | None
    store: StateStore
    resolver: StoreResolver
    target: Connector
    dry_run: bool
    rows_read: int = 0        # rows read so far in this run (for thresholds)


class BatchStage(Protocol):
    name: str

    def start(self, ctx: StageContext) -> None: ...

    def process(self, items: list[Item], ctx: StageContext) -> list[Rejection]: ...

    def finish(self, ctx: StageContext) -> None: ...


class StageFactory(Protocol):
    """What a ``crm2erp.stages`` entry point names."""

    def __call__(self, flow: FlowSpec, store: StateStore) -> BatchStage | None: ...


class RunHook(Protocol):
    """What a ``crm2erp.hooks`` entry point names: called with the runner and its result."""

    def __call__(self, runner: Any, result: Any) -> object: ...


def build_stages(flow: FlowSpec, store: StateStore) -> list[BatchStage]:
    """The flow's stages, from every registered factory that wants the flow, in order."""
    stages: list[BatchStage] = []
    for _name, factory in registry.load_all(registry.STAGES):
        stage = factory(flow, store)
        if stage is not None:
            stages.append(stage)
    return stages


def start_stages(stages: list[BatchStage], ctx: StageContext) -> None:
    """Tell every stage a run starts (``ctx.run_id`` is set)."""
    for stage in stages:
        stage.start(ctx)


def run_hooks(runner: Any, result: Any) -> None:
    """Call every registered run hook; a hook's failure is logged, not raised."""
    for name, hook in registry.load_all(registry.HOOKS):
        try:
            hook(runner, result)
        except Exception:
            log.warning("run hook %s failed for flow %s run %s", name, result.flow,
                        result.run_id, exc_info=True)

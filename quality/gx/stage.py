"""The quality gate: a batch stage that validates every batch before the load.

For each batch the flow's checks run on the canonical records
(:class:`~crm2erp.quality.gx.validate.BatchChecker`). Then:

* a row failing a *critical* rule is rejected: it goes to the dead letters
  with stage ``quality``, naming the rule, the expectation and the value;
  a rule that still passes thanks to its ``mostly`` tolerance rejects nothing;
* *warning* and *info* failures load and are only recorded;
* the rule totals of the run so far are saved after every batch
  (``quality_results``), so a run that dies still leaves its findings;
* when the rows rejected so far exceed the flow's ``threshold`` share of the
  rows read so far, :class:`QualityGateError` stops the run before the batch
  is written: nothing of it reaches the target.

Only the per-rule totals and a few sample values per rule are kept, so
memory stays flat whatever the source size.

Great Expectations is imported, and the flow's suite built, at the first
batch that has rows: a run that reads nothing new (a second ``crm2erp demo``,
``reconcile``, a scheduled run with no changes) costs no GX import. A missing
GX install is still a :class:`~crm2erp.errors.ConfigError` before the run starts.
"""

from __future__ import annotations

__all__ = ["QualityStage", "quality_stage", "RunTally", "not_installed"]

import importlib.util
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crm2erp.engine.stages import Item, Rejection, StageContext
from crm2erp.errors import ConfigError
from crm2erp.quality.gx.config import QualityConfig
from crm2erp.quality.gx.errors import QualityGateError
from crm2erp.store.quality import QualityResult

if TYPE_CHECKING:  # GX is slow to import: only batches with rows to check pay for it
    from crm2erp.quality.gx.suite import Check
    from crm2erp.quality.gx.validate import BatchChecker, Outcome

log = logging.getLogger(__name__)

@dataclass
class _RuleTally:
    check: Check
    evaluated: int = 0
    failed: int = 0
    success: bool = True
    sample: list[dict[str, Any]] = field(default_factory=list)


class RunTally:
    """Per-rule totals of one run, with a bounded sample of failing values."""

    def __init__(self, checks: list[Check], sample_size: int = 20):
        self.sample_size = sample_size
        self.rules = {c.rule: _RuleTally(c) for c in checks}
        self.rows = 0
        self.rejected = 0

    def add(self, outcomes: list[Outcome], rows: int) -> None:
        self.rows += rows
        for outcome in outcomes:
            tally = self.rules[outcome.check.rule]
            tally.evaluated += outcome.evaluated
            tally.failed += len(outcome.failing)
            tally.success = tally.success and outcome.success
            room = self.sample_size - len(tally.sample)
            for key, value in list(outcome.failing.items())[:max(room, 0)]:
                tally.sample.append({"key": key, "value": value})
            if outcome.error and len(tally.sample) < self.sample_size:
                tally.sample.append({"key": None, "value": None, "error": outcome.error})

    def results(self) -> list[QualityResult]:
        return [QualityResult(rule=t.check.rule, expectation=t.check.expectation,
                              column=t.check.column, severity=t.check.severity,
                              evaluated=t.evaluated, failed=t.failed, success=t.success,
                              sample=list(t.sample))
                for t in self.rules.values()]

    def failures(self, severity: str | None = None) -> int:
        return sum(t.failed for t in self.rules.values()
                   if severity is None or t.check.severity == severity)


def rejected_rows(outcomes: list[Outcome]) -> dict[str, list[Outcome]]:
    """Source key -> the critical outcomes that reject it."""
    rejected: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.check.severity == "critical" and not outcome.success:
            for key in outcome.failing:
                rejected[key].append(outcome)
    return rejected


def reason(key: str, outcomes: list[Outcome]) -> str:
    parts = []
    for outcome in outcomes:
        check = outcome.check
        where = f" on {check.column}" if check.column else ""
        parts.append(f"rule {check.rule!r} ({check.expectation}{where}) failed: "
                     f"value {outcome.failing[key]!r}")
    return "quality: " + "; ".join(parts)


def not_installed(flow, why: object) -> ConfigError:
    return ConfigError(f"flow {flow.flow!r} has quality rules, but Great Expectations "
                       f"is not installed ({why}); pip install 'crm2erp[quality]'")


class QualityStage:
    """The batch stage; see the module docstring."""

    name = "quality"

    def __init__(self, flow, store):
        self.flow = flow
        self.store = store
        self.config: QualityConfig = flow.quality
        if importlib.util.find_spec("great_expectations") is None:
            raise not_installed(flow, "no module named 'great_expectations'")
        self._checker: BatchChecker | None = None
        self._run_id: object = object()
        self.tally: RunTally | None = None

    @property
    def checker(self) -> BatchChecker:
        """The flow's checks and suite, built (and GX imported) at the first batch
        that has rows: a run with nothing to validate costs no GX at all."""
        if self._checker is None:
            try:
                from crm2erp.quality.gx.validate import BatchChecker
            except ImportError as exc:
                raise not_installed(self.flow, exc) from None
            self._checker = BatchChecker(self.flow)
        return self._checker

    def start(self, ctx: StageContext) -> None:
        if ctx.run_id != self._run_id:
            self._run_id = ctx.run_id
            self.tally = None

    def process(self, items: list[Item], ctx: StageContext) -> list[Rejection]:
        self.start(ctx)   # also when process is called outside a managed run
        if not items:
            return []
        if self.tally is None:
            self.tally = RunTally(self.checker.checks, self.config.sample_size)
        run_id = None if ctx.dry_run else ctx.run_id   # a dry run notifies nobody
        outcomes = self.checker.run(items, ctx.store, self.flow.target.connection, run_id)
        self.tally.add(outcomes, len(items))
        rejected = rejected_rows(outcomes)
        self.tally.rejected += len(rejected)
        self._save(ctx)
        self._gate(ctx)
        return [Rejection(item, reason(item.source_key, rejected[item.source_key]), self.name)
                for item in items if item.source_key in rejected]

    def _save(self, ctx: StageContext) -> None:
        if ctx.run_id is not None:
            self.store.save_quality_results(ctx.run_id, self.flow.flow, self.tally.results())

    def _gate(self, ctx: StageContext) -> None:
        threshold = self.config.threshold
        if threshold is None or not self.tally.rejected:
            return
        rows = max(ctx.rows_read, self.tally.rows)
        share = self.tally.rejected / rows
        if share <= threshold:
            return
        worst = sorted((t for t in self.tally.rules.values()
                        if t.failed and t.check.severity == "critical"),
                       key=lambda t: -t.failed)[:3]
        rules = ", ".join(f"{t.check.rule!r} ({t.failed})" for t in worst)
        raise QualityGateError(
            f"flow {self.flow.flow!r}: {self.tally.rejected} of {rows} rows read "
            f"({share:.1%}) fail critical quality rules, above the threshold of "
            f"{threshold:.1%}; the run stopped before writing this batch. Worst rules: "
            f"{rules}. Fix the source data or the rules (see `crm2erp report "
            f"{ctx.run_id}`), then run the flow again.",
            flow=self.flow.flow, share=share, threshold=threshold)

    def finish(self, ctx: StageContext) -> None:
        """Nothing left to do: the rule totals are saved after every batch."""


def quality_stage(flow, store) -> QualityStage | None:
    """The stage factory (entry point ``crm2erp.stages``): flows with ``quality:``."""
    if getattr(flow, "quality", None) is None:
        return None
    return QualityStage(flow, store)


quality_stage.order = 10  # type: ignore[attr-defined]  # stages run in ascending order

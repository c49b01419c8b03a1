"""Validate a flow's source without loading it (``crm2erp quality run``).

The source is read batch by batch and each record is mapped and validated
exactly as a sync would, then the flow's checks run; nothing is written to
the target or the state store. Records the canonical model refuses are
counted under the pseudo-rule ``schema: canonical model`` (critical).
"""

from __future__ import annotations

__all__ = ["check_flow", "FlowCheck", "MODEL_RULE"]

from collections import Counter
from dataclasses import dataclass, field

from crm2erp.engine.inbound import canonicalize
from crm2erp.quality.gx.config import QualityConfig
from crm2erp.quality.gx.stage import RunTally, rejected_rows
from crm2erp.quality.gx.suite import Check
from crm2erp.quality.gx.validate import BatchChecker, Outcome
from crm2erp.store import BatchCommit

MODEL_RULE = "schema: canonical model"


@dataclass
class FlowCheck:
    tally: RunTally
    counts: Counter = field(default_factory=Counter)

    @property
    def critical_failures(self) -> int:
        return self.tally.failures("critical")


def check_flow(runner, *, limit: int | None = None, batch_size: int = 500) -> FlowCheck:
    """Check up to ``limit`` source rows of ``runner``'s flow (all when None)."""
    flow = runner.flow
    config = flow.quality or QualityConfig()
    checker = BatchChecker(flow)
    model_check = Check(MODEL_RULE, "pydantic validation", None, origin="schema")
    tally = RunTally([model_check, *checker.checks], config.sample_size)
    result = FlowCheck(tally)
    runner.mode = "full_refresh"
    for batch in runner.source.read(flow.source.stream, None, batch_size=batch_size):
        rows = batch.rows if limit is None else batch.rows[:max(limit - tally.rows, 0)]
        if not rows:
            break
        scratch = BatchCommit(run_id=0, flow=flow.flow)
        counts: Counter = Counter(read=len(rows))
        items = canonicalize(runner, rows, counts, scratch)
        refused = {d.source_key: d.error for d in scratch.dead_letters if d.stage != "parked"}
        outcomes = [Outcome(model_check, len(rows), not refused, refused)]
        outcomes += checker.run(items, runner.store, flow.target.connection)
        tally.add(outcomes, len(rows))
        tally.rejected += len(rejected_rows(outcomes))
        result.counts.update(counts)
        if limit is not None and tally.rows >= limit:
            break
    return result

"""Run a flow's checks on one batch of canonical records.

The batch becomes a pandas DataFrame with one column per canonical field
(nested fields flattened with dots, ``billing_address.postal_code``), a
``__key`` column holding the source key (GX reports failing rows by it) and
one boolean column per conditional rule. One process-wide ephemeral GX
context serves every flow: creating contexts is cheap, but importing and
warming GX is not.
"""

from __future__ import annotations

__all__ = ["Outcome", "BatchChecker", "flatten", "gx_context"]

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from crm2erp.quality.gx.config import PARENT_RULE
from crm2erp.quality.gx.project import FlowCheckpoint, project_gx_root
from crm2erp.quality.gx.results import KEY, clean, read_result
from crm2erp.quality.gx.suite import Check, build_suite, flow_checks, gx_context

log = logging.getLogger(__name__)

RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": [KEY],
                 "return_unexpected_index_query": False}


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys; lists stay values."""
    flat: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{name}."))
        else:
            flat[prefix + name] = _plain(value)
    return flat


@dataclass
class Outcome:
    """What one check found in one batch."""

    check: Check
    evaluated: int
    success: bool
    failing: dict[str, Any] = field(default_factory=dict)   # source key -> offending value
    error: str | None = None                               # GX raised instead of judging


class BatchChecker:
    """A flow's checks and GX suite, applied batch by batch."""

    def __init__(self, flow, checks: list[Check] | None = None):
        self.flow = flow
        self.checks = flow_checks(flow) if checks is None else checks
        self.suite = build_suite(flow, self.checks)
        self.by_rule = {c.rule: c for c in self.checks}
        root = project_gx_root(flow)
        self.checkpoint = None if root is None else \
            FlowCheckpoint(root, self.suite, RESULT_FORMAT, flow)
        if self.checkpoint is not None:   # the project's own, file-backed GX context
            self.suite = self.checkpoint.suite
            return
        context = gx_context()
        if any(s.name == self.suite.name for s in context.suites.all()):
            context.suites.delete(self.suite.name)
        self.suite = context.suites.add(self.suite)
        self.batch_definition = (context.data_sources.get("crm2erp").get_asset("batch")
                                 .get_batch_definition("batch"))

    def frame(self, items: Sequence[Any]) -> pd.DataFrame:
        rows = []
        for item in items:
            flat = flatten(item.record.model_dump(mode="python"))
            for check in self.checks:
                if check.condition is not None:
                    flat[check.when_column] = bool(check.condition(flat))
            flat[KEY] = item.source_key
            rows.append(flat)
        frame = pd.DataFrame(rows)
        for check in self.checks:  # a field None in every record is still a column
            if check.column and check.column not in frame.columns:
                frame[check.column] = None
        return frame

    def run(self, items: Sequence[Any], store=None, target_system: str | None = None,
            run_id: int | None = None) -> list[Outcome]:
        """Every check's outcome on ``items`` (parent checks need the store) in sync run
        ``run_id`` (None: a check outside a run)."""
        if not items:
            return []
        frame = self.frame(items)
        outcomes = self._gx(frame, run_id) if self.suite.expectations else []
        parent_checks = [c for c in self.checks if c.expectation == PARENT_RULE]
        for check in parent_checks:
            outcomes.append(self._parents(check, frame, store, target_system))
        return outcomes

    def _gx(self, frame: pd.DataFrame, run_id: int | None = None) -> list[Outcome]:
        if self.checkpoint is not None:
            result = self.checkpoint.validate(frame, run_id)
        else:
            batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
            result = batch.validate(self.suite, result_format=RESULT_FORMAT)
        outcomes = []
        for one in map(read_result, result.results):
            if one.error:
                log.warning("flow %s: rule %r could not be evaluated: %s",
                            self.flow.flow, one.rule, one.error)
            outcomes.append(Outcome(self.by_rule[one.rule], one.evaluated, one.success,
                                    one.failing, one.error))
        return outcomes

    @staticmethod
    def _parents(check: Check, frame: pd.DataFrame, store, target_system) -> Outcome:
        rows = frame if check.when_column is None else frame[frame[check.when_column]]
        values = {str(k): v for k, v in zip(rows[KEY], rows[check.column], strict=True)
                  if clean(v) is not None}
        present = set()
        if values and store is not None:
            present = set(store.external_ids(check.parent_entity, target_system,
                                             set(values.values())))
        failing = {k: v for k, v in values.items() if v not in present}
        return Outcome(check, len(rows), not failing, failing)


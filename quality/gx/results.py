"""The one reader of a GX per-expectation result (``ExpectationValidationResult``).

The batch gate (:mod:`crm2erp.quality.gx.validate`) and the Checkpoint's webhook
action (:mod:`crm2erp.quality.gx.actions`) both read GX's results through
:func:`read_result`, so the counts a sync run stores and the counts its webhook
is told are the same numbers.

``evaluated`` is GX's ``element_count``: for a conditional rule (``when:``, a
``row_condition`` on a boolean column) GX counts only the rows the condition
selected, so it is the number of rows the rule judged, with or without ``when:``.
An expectation GX could not evaluate has ``error`` set (GX's message) and counts
nothing.
"""

from __future__ import annotations

__all__ = ["KEY", "RuleResult", "read_result", "clean"]

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from crm2erp.jsonutil import to_jsonable

#: the batch frame's column holding each row's source key (GX reports failing rows by it)
KEY = "__key"


@dataclass(frozen=True)
class RuleResult:
    """What GX found for one expectation of one batch."""

    rule: str
    expectation: str
    column: str | None
    success: bool
    failed: int
    evaluated: int
    failing: dict[str, Any] = field(default_factory=dict)   # source key -> offending value
    error: str | None = None                               # GX raised instead of judging


def clean(value: Any) -> Any:
    """pandas' NaN for a missing number is None to everyone else."""
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):  # lists and other non-scalars
        pass
    return value


def _error(exception_info: Any) -> str | None:
    """GX's message when it raised: ``exception_info`` is one such dict, or (GX 1.x)
    one per metric it tried to compute."""
    if not isinstance(exception_info, dict):
        return None
    infos = [exception_info] if "raised_exception" in exception_info else \
        [v for v in exception_info.values() if isinstance(v, dict)]
    for info in infos:
        if info.get("raised_exception"):
            return str(info.get("exception_message"))[:500]
    return None


def read_result(one: Any) -> RuleResult:
    """The crm2erp view of one GX ``ExpectationValidationResult``."""
    config, info = one.expectation_config, one.result or {}
    column = config.kwargs.get("column")
    failing = {}
    for entry in info.get("unexpected_index_list") or []:
        if isinstance(entry, dict) and KEY in entry:
            failing[str(entry[KEY])] = to_jsonable(clean(entry.get(column)))
    return RuleResult(rule=(config.meta or {}).get("rule", config.type),
                      expectation=config.type, column=column, success=bool(one.success),
                      failed=int(info.get("unexpected_count") or 0),
                      evaluated=int(info.get("element_count") or 0),
                      failing=failing, error=_error(one.exception_info))

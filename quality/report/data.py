"""Everything the steward report shows, gathered from the state store as JSON-able data.

The HTML page and ``crm2erp report --json`` are two renderings of the dict
:func:`collect` returns, so they never disagree.
"""

from __future__ import annotations

__all__ = ["collect", "REPORT_VERSION"]

import datetime as dt
import logging
from typing import Any

from crm2erp.jsonutil import to_jsonable
from crm2erp.quality.report.mask import Masker
from crm2erp.store.tables import COUNT_FIELDS

log = logging.getLogger(__name__)

REPORT_VERSION = 1
HISTORY_RUNS = 15
DEAD_LETTER_ROWS = 100
DEDUPE_ROWS = 50
DIFF_ROWS = 100


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _run(record) -> dict[str, Any]:
    seconds = record.duration.total_seconds() if record.duration is not None else None
    return {"id": record.id, "flow": record.flow, "mode": record.mode,
            "status": record.status, "started_at": _iso(record.started_at),
            "finished_at": _iso(record.finished_at), "seconds": seconds,
            "message": record.message, "warnings": record.warning_list,
            "counts": record.counts}


def _quality(store, run_id: int, flow, masker: Masker) -> dict[str, Any]:
    config = getattr(flow, "quality", None) if flow is not None else None
    results = store.quality_results(run_id)
    rows = []
    for result in results:
        rows.append({
            "rule": result.rule, "expectation": result.expectation, "column": result.column,
            "severity": result.severity, "evaluated": result.evaluated,
            "failed": result.failed, "success": result.success,
            "sample": [{**s, "value": masker.value(result.column, s.get("value"))}
                       for s in result.sample]})
    by_severity = {s: sum(r["failed"] for r in rows if r["severity"] == s)
                   for s in ("critical", "warning", "info")}
    return {"configured": config is not None or bool(rows),
            "threshold": None if config is None else config.threshold,
            "masked_fields": sorted(masker.fields),
            "results": rows, "failed_by_severity": by_severity,
            "rules_failed": sum(1 for r in rows if not r["success"])}


def _history(store, flow_name: str, run_id: int) -> list[dict[str, Any]]:
    runs = [r for r in store.list_runs(flow=flow_name, limit=HISTORY_RUNS * 2)
            if r.id <= run_id][:HISTORY_RUNS]
    quality = store.quality_history(flow_name, [r.id for r in runs])
    return [{"run_id": r.id, "status": r.status, "started_at": _iso(r.started_at),
             "read": r.read, "failed": r.failed, "parked": r.parked,
             "quality_critical": quality.get(r.id, {}).get("critical", 0),
             "quality_warning": quality.get(r.id, {}).get("warning", 0)}
            for r in reversed(runs)]


def _dead_letters(store, run_id: int, masker: Masker) -> list[dict[str, Any]]:
    return [{"id": d.id, "stage": d.stage, "source_key": d.source_key, "error": d.error,
             "status": d.status, "attempts": d.attempts,
             "payload": masker.row(d.payload) if isinstance(d.payload, dict) else d.payload}
            for d in store.run_dead_letters(run_id, limit=DEAD_LETTER_ROWS)]


DEDUPE_COLUMNS = ("id", "left_label", "right_label", "match_probability", "reason",
                  "left_id", "right_id")


def _dedupe(store, flow, flow_name: str) -> dict[str, Any]:
    """The pairs waiting for a steward's decision, when the store keeps dedupe pairs."""
    configured = flow is not None and getattr(flow, "dedupe", None) is not None
    reader = getattr(store, "dedupe_pairs", None)
    if reader is None or not store.has_table("dedupe_pairs"):
        return {"configured": configured, "available": False, "rows": [],
                "columns": list(DEDUPE_COLUMNS),
                "note": "dedupe is not configured: the state store keeps no dedupe pairs"}
    pairs = reader(flow=flow_name, status="pending", limit=DEDUPE_ROWS)
    rows = [{name: to_jsonable(getattr(p, name, None)) for name in DEDUPE_COLUMNS}
            for p in pairs]
    if rows:
        note = None
    elif configured:
        note = "no pairs wait for review"
    else:
        note = "dedupe is not configured for this flow (no dedupe: section)"
    return {"configured": configured, "available": True, "rows": rows,
            "columns": list(DEDUPE_COLUMNS), "note": note}


def _reconciliation(store, flow_name: str, masker: Masker) -> dict[str, Any] | None:
    latest = store.latest_reconciliation(flow_name)
    if latest is None:
        return None
    details = dict(latest.details)
    diffs = [{**d, "source": masker.value(d.get("field"), d.get("source")),
              "target": masker.value(d.get("field"), d.get("target"))}
             for d in details.get("different", [])[:DIFF_ROWS]]
    return {"id": latest.id, "status": latest.status, "started_at": _iso(latest.started_at),
            "finished_at": _iso(latest.finished_at), "counts": latest.counts,
            "different": diffs,
            "missing_in_target": details.get("missing_in_target", [])[:DIFF_ROWS],
            "only_in_target": details.get("only_in_target", [])[:DIFF_ROWS],
            "orphaned": details.get("orphaned", [])[:DIFF_ROWS]}


def collect(store, run_id: int, *, flow=None, mappings=()) -> dict[str, Any]:
    """The report of run ``run_id``.

    ``flow`` (the FlowSpec, when the project is at hand) gives the PII mask
    and the quality settings; ``mappings`` (its MappingSpecs) extend the mask
    to the source and target names of masked fields.
    """
    record = store.get_run(run_id)
    masker = Masker.for_flow(flow, mappings)
    return {
        "version": REPORT_VERSION,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        "run": _run(record),
        "count_fields": list(COUNT_FIELDS),
        "history": _history(store, record.flow, run_id),
        "quality": _quality(store, run_id, flow, masker),
        "dead_letters": _dead_letters(store, run_id, masker),
        "dedupe": _dedupe(store, flow, record.flow),
        "reconciliation": _reconciliation(store, record.flow, masker),
    }

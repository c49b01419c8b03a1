"""Write the steward report after every run (an engine run hook).

Registered as entry point ``crm2erp.hooks`` (``report``). Reports go to the
folder :func:`~crm2erp.quality.report.paths.reports_dir` names, as
``run-<id>.html`` and ``run-<id>.json``; with no folder nothing is written.
"""

from __future__ import annotations

__all__ = ["write_report", "write_run_report"]

import logging
from pathlib import Path

from crm2erp.quality.report.data import collect
from crm2erp.quality.report.paths import reports_dir
from crm2erp.quality.report.render import render_html, render_json

log = logging.getLogger(__name__)


def write_report(store, run_id: int, folder: Path, *, flow=None, mappings=()) -> Path:
    """Write ``run-<id>.html`` and ``.json`` into ``folder``; returns the HTML path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = collect(store, run_id, flow=flow, mappings=mappings)
    html = folder / f"run-{run_id}.html"
    html.write_text(render_html(data), encoding="utf-8")
    (folder / f"run-{run_id}.json").write_text(render_json(data), encoding="utf-8")
    return html


def write_run_report(runner, result) -> Path | None:
    """The hook: the report of the run ``result`` of ``runner``'s flow."""
    folder = reports_dir(runner.store)
    if folder is None or result.run_id is None:
        return None
    mappings = [m.spec for m in (runner.inbound, runner.outbound) if hasattr(m, "spec")]
    path = write_report(runner.store, result.run_id, folder, flow=runner.flow,
                        mappings=mappings)
    log.info("flow %s run %s: report %s", runner.flow.flow, result.run_id, path)
    return path

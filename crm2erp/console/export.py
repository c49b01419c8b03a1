"""The static report: the console's run pages as files, for e-mail and CI artefacts.

Written by ``crm2erp report`` / ``crm2erp serve --export DIR`` and, after every
run, by the engine hook :func:`write_run_report` (into the folder
:func:`~crm2erp.quality.report.paths.reports_dir` names). ``index.html`` lists
every flow with its last run, one ``flow-NAME.html`` per flow shows its history
with the labelled chart, and one ``run-ID.html`` (with ``run-ID.json``, the same
facts as data) per run, all rendered from the console's own templates with the
stylesheet inline and no script. A finished run's files are written once and never
rewritten: they show the run as recorded when it finished.
"""

from __future__ import annotations

__all__ = ["export_site", "run_data", "write_run_report"]

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from crm2erp.console.views import environment, history_chart, masked_rules
from crm2erp.jsonutil import dumps, to_jsonable
from crm2erp.quality.report.mask import Masker
from crm2erp.store.types import utcnow

log = logging.getLogger(__name__)

DEAD_LETTER_ROWS = 100
SEVERITIES = ("critical", "warning", "info")


def _unmasked(_flow: str) -> Masker:
    return Masker(set())


def run_data(store, run, mask: Masker, rules=None) -> dict[str, Any]:
    """What a run's page shows, as JSON-able data (``run-ID.json``, ``report --json``):
    the run with its counts, its quality rules (``rules``: already masked) and the dead
    letters it wrote, masked."""
    rules = masked_rules(store, run.id, mask) if rules is None else rules
    letters = [{"id": x.id, "stage": x.stage, "source_key": x.source_key, "error": x.error,
                "status": x.status, "attempts": x.attempts,
                "payload": mask.row(x.payload) if isinstance(x.payload, dict) else x.payload}
               for x in store.run_dead_letters(run.id, limit=DEAD_LETTER_ROWS)]
    return {
        "run": {"id": run.id, "flow": run.flow, "mode": run.mode,
                "status": store.run_status(run), "started_at": run.started_at,
                "finished_at": run.finished_at, "message": run.message,
                "warnings": run.warning_list, "counts": run.counts},
        "quality": {"results": [to_jsonable(dataclasses.asdict(r)) for r in rules],
                    "masked_fields": sorted(mask.fields),
                    "failed_by_severity": {s: sum(r.failed for r in rules if r.severity == s)
                                           for s in SEVERITIES}},
        "dead_letters": letters,
    }


def export_site(store, folder: Path, mask_for: Callable[[str], Masker] = _unmasked,
                flows: Iterable[str] | None = None) -> list[Path]:
    """Write the pages into ``folder``; returns the files written (files of finished
    runs already there are kept as they are). ``mask_for(flow)``: the flow's PII
    mask (default: nothing masked). ``flows``: write the pages of these flows only
    (the index lists every flow)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    env = environment("", static=True)
    runs_of = defaultdict(list)
    for run in store.list_runs(None, limit=1_000_000):   # newest first
        runs_of[run.flow].append(run)
    wanted = set(runs_of) if flows is None else set(flows)
    written = []

    def write(name: str, text: str) -> None:
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)

    def render(template: str, **context) -> str:
        return env.get_template(template).render(**context)

    index = []
    for flow, history in sorted(runs_of.items()):
        statuses = {r.id: store.run_status(r) for r in history}
        index.append({"name": flow, "runs": history, "status": statuses[history[0].id]})
        if flow not in wanted:
            continue
        write(env.globals["flow_url"](flow), render("runs.html", flow=flow, runs=history,
                                                    chart=history_chart(history),
                                                    statuses=statuses))
        mask = mask_for(flow)
        for run in history:
            name = env.globals["run_url"](run.id)
            if run.finished_at is not None and (folder / name).exists():
                continue      # immutable: written when the run had finished
            rules = masked_rules(store, run.id, mask)
            write(name, render("run.html", run=run, status=statuses[run.id], rules=rules))
            write(name.removesuffix(".html") + ".json",
                  dumps(run_data(store, run, mask, rules), indent=2) + "\n")
    write("index.html", render("site_index.html", flows=index, written=utcnow()))
    return written


def write_run_report(runner, result) -> Path | None:
    """The engine hook: the report pages of the flow ``runner`` just ran, into the
    reports folder (none: nothing written); returns the run's page."""
    from crm2erp.quality.report.paths import reports_dir

    folder = reports_dir(runner.store)
    if folder is None or result.run_id is None:
        return None
    mappings = [m.spec for m in (runner.inbound, runner.outbound) if hasattr(m, "spec")]
    mask = Masker.for_flow(runner.flow, mappings)
    export_site(runner.store, folder, lambda _flow: mask, flows=[runner.flow.flow])
    page = folder / f"run-{result.run_id}.html"
    log.info("flow %s run %s: report %s", runner.flow.flow, result.run_id, page)
    return page

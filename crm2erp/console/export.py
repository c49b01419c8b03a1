"""``crm2erp serve --export DIR``: the console's run pages as static files.

For e-mail and CI artefacts: ``index.html`` (every flow with its last run),
one ``flow-NAME.html`` per flow (its history with the labelled chart) and one
``run-ID.html`` per run, all rendered from the console's own templates with
the stylesheet inline and no script. A finished run's page is written once and
never rewritten: it shows the run as recorded when it finished.
"""

from __future__ import annotations

__all__ = ["export_site"]

import dataclasses
from collections import defaultdict
from pathlib import Path

from crm2erp.console.views import environment, flow_masker, history_chart
from crm2erp.store.types import utcnow


def export_site(store, folder: Path, project=None) -> list[Path]:
    """Write the pages into ``folder``; returns the files written (pages of finished
    runs already there are kept as they are). ``project``: the flows' masks (None:
    nothing masked)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = environment("", static=True)
    runs_of = defaultdict(list)
    for run in store.list_runs(None, limit=1_000_000):   # newest first
        runs_of[run.flow].append(run)
    written = []

    def write(name: str, template: str, **context) -> None:
        path = folder / name
        path.write_text(env.get_template(template).render(**context), encoding="utf-8")
        written.append(path)

    flows = []
    for flow, history in sorted(runs_of.items()):
        statuses = {r.id: store.run_status(r) for r in history}
        flows.append({"name": flow, "runs": history, "status": statuses[history[0].id]})
        write(env.globals["flow_url"](flow), "runs.html", flow=flow, runs=history,
              chart=history_chart(history), statuses=statuses)
        mask = flow_masker(project, flow)
        for run in history:
            name = env.globals["run_url"](run.id)
            if run.finished_at is not None and (folder / name).exists():
                continue      # immutable: written when the run had finished
            rules = [dataclasses.replace(r, sample=[mask.value(r.column, v) for v in r.sample])
                     for r in store.quality_results(run.id)]
            write(name, "run.html", run=run, status=statuses[run.id], rules=rules)
    write("index.html", "site_index.html", flows=flows, written=utcnow())
    return written

"""``crm2erp status``: flows, their last runs, watermarks and dead letters."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from crm2erp.cli.app import settings
from crm2erp.cli.output import console, literal


def status(ctx: typer.Context,
           runs: int = typer.Option(10, "--runs", help="How many recent runs to list.")) -> None:
    """Show every flow's last run, watermark and open dead letters, the last runs'
    warnings, then recent runs.

    A run whose process died shows ``crashed`` (recorded so by the next run)."""
    cfg = settings(ctx)
    project = cfg.load_project()
    store = cfg.open_store()
    try:
        table = Table(title=literal(f"flows in {cfg.project}"), title_justify="left")
        for column in ("flow", "entity", "source -> target", "last run", "status",
                       "watermark", "dead letters", "parked"):
            table.add_column(column)
        warned: list[tuple[str, int, str]] = []
        for name, flow in sorted(project.flows.items()):
            last = store.list_runs(name, limit=1)
            warned += [(name, last[0].id, w) for w in (last[0].warning_list if last else [])]
            mark = store.get_watermark(name, flow.source.stream)
            table.add_row(
                literal(name), literal(flow.entity),
                literal(f"{flow.source.connection}.{flow.source.stream} -> "
                        f"{flow.target.connection}.{flow.target.stream}"),
                last[0].started_at.strftime("%Y-%m-%d %H:%M:%S") if last else "never",
                store.run_status(last[0]) if last else "",
                literal(mark.value) if mark else "",
                str(store.count_dead_letters(name, "open")),
                str(store.count_dead_letters(name, "parked")))
        console.print(table)
        for name, run_id, warning in warned:
            console.print(Text.assemble(("warning", "yellow"),
                                        literal(f": flow {name} run {run_id}: {warning}")),
                          soft_wrap=True)
        recent = store.list_runs(None, limit=runs)
        if recent:
            history = Table(title="recent runs", title_justify="left")
            for column in ("run", "flow", "mode", "started", "status", "read", "created",
                           "updated", "unchanged", "failed", "parked"):
                history.add_column(column)
            for run in recent:
                history.add_row(str(run.id), literal(run.flow), literal(run.mode),
                                run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                                store.run_status(run),
                                *(str(run.counts.get(c, 0)) for c in
                                  ("read", "created", "updated", "unchanged", "failed",
                                   "parked")))
            console.print(history)
    finally:
        store.close()

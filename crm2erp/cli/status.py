"""``crm2erp status``: flows, their last runs, watermarks and dead letters."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from crm2erp.cli.context import settings
from crm2erp.cli.output import console, json_option, literal, print_json


def status(ctx: typer.Context,
           runs: int = typer.Option(10, "--runs", help="How many recent runs to list."),
           as_json: bool = json_option()) -> None:
    """Show every flow's last run, watermark and open dead letters, the last runs'
    warnings, then recent runs.

    A run whose process died shows ``crashed`` (recorded so by the next run)."""
    from crm2erp.engine.status import shown_status

    cfg = settings(ctx)
    project = cfg.load_project()
    store = cfg.open_store(create=False)
    try:
        if as_json:
            print_json(_as_json(cfg, project, store, runs))
            return
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
                shown_status(store.run_status(last[0]), last[0].mode) if last else "",
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
                                shown_status(store.run_status(run), run.mode),
                                *(str(run.counts.get(c, 0)) for c in
                                  ("read", "created", "updated", "unchanged", "failed",
                                   "parked")))
            console.print(history)
    finally:
        store.close()


def _as_json(cfg, project, store, runs: int) -> dict:
    """What the tables show, as one JSON document."""
    from dataclasses import asdict

    from crm2erp.engine.status import shown_status

    flows = []
    for name, flow in sorted(project.flows.items()):
        last = store.list_runs(name, limit=1)
        mark = store.get_watermark(name, flow.source.stream)
        flows.append({
            "flow": name, "entity": flow.entity,
            "source": f"{flow.source.connection}.{flow.source.stream}",
            "target": f"{flow.target.connection}.{flow.target.stream}",
            "last_run": ({"id": last[0].id, "started_at": last[0].started_at,
                          "status": shown_status(store.run_status(last[0]), last[0].mode),
                          "warnings": last[0].warning_list} if last else None),
            "watermark": mark.value if mark else None,
            "dead_letters": store.count_dead_letters(name, "open"),
            "parked": store.count_dead_letters(name, "parked")})
    recent = [{**asdict(run), "status": shown_status(store.run_status(run), run.mode)}
              for run in store.list_runs(None, limit=runs)]
    return {"project": str(cfg.project), "flows": flows, "runs": recent}

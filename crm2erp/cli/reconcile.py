"""``crm2erp reconcile FLOW``: compare a flow's source and target, record by record."""

from __future__ import annotations

import json

import typer
from rich.table import Table
from rich.text import Text

from crm2erp.cli.context import EXIT_OK, EXIT_PROBLEMS, exit_with, settings
from crm2erp.cli.output import console, literal
from crm2erp.errors import ConfigError


def reconcile(ctx: typer.Context, flow: str = typer.Argument(..., help="Flow name."),
              as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
              limit: int = typer.Option(20, "--limit", help="Differences listed per kind.")
              ) -> None:
    """Map FLOW's source through its mappings and compare it with the target.

    Stores the result (the steward report shows the latest) and exits 1 when
    source and target differ.
    """
    from crm2erp.engine import Engine
    from crm2erp.quality.reconcile import reconcile as run_reconcile

    cfg = settings(ctx)
    project = cfg.load_project()
    if flow not in project.flows:
        raise ConfigError(f"unknown flow {flow!r} (flows: {', '.join(sorted(project.flows))})")
    store = cfg.open_store()
    try:
        with Engine(project, store) as engine:
            result = run_reconcile(engine.runner(flow))
    finally:
        store.close()
    if as_json:
        console.print(json.dumps({"id": result.id, "flow": result.flow, "status": result.status,
                                  "counts": dict(result.counts), "details": result.details},
                                 indent=2, default=str), markup=False, highlight=False,
                      soft_wrap=True)
    else:
        _print(result, limit)
    exit_with(EXIT_OK if result.clean else EXIT_PROBLEMS)


def _print(result, limit: int) -> None:
    summary = Table(title=literal(f"reconcile {result.flow} (#{result.id}): {result.status}"),
                    title_justify="left")
    summary.add_column("count")
    summary.add_column("value", justify="right")
    for name in ("source_count", "target_count", "matched", "different", "missing_in_target",
                 "only_in_target", "orphaned", "unmapped", "out_of_scope"):
        summary.add_row(name.replace("_", " "), str(result.counts[name]))
    console.print(summary)
    diffs = result.details["different"][:limit]
    if diffs:
        table = Table(title="field differences", title_justify="left")
        for column in ("key", "field", "expected (source)", "in target"):
            table.add_column(column, overflow="fold")
        for d in diffs:
            table.add_row(literal(d["key"]), literal(d["field"]), literal(repr(d["source"])),
                          literal(repr(d["target"])))
        console.print(table)
    for kind in ("missing_in_target", "only_in_target", "orphaned", "unmapped"):
        entries = result.details[kind][:limit]
        if entries:
            console.print(Text.assemble((kind.replace("_", " "), "bold"), ": ", literal(", ".join(
                f"{e['key']} ({e.get('note') or ''})" for e in entries))))

"""``crm2erp quality``: validate a flow's data without loading it; export its suite."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from crm2erp.cli.context import EXIT_OK, EXIT_PROBLEMS, EXIT_QUALITY_GATE, exit_with, settings
from crm2erp.cli.output import console, literal
from crm2erp.errors import ConfigError

app = typer.Typer(no_args_is_help=True, help="Data quality: check flows, export GX suites.")


def _flow(project, name: str):
    if name not in project.flows:
        raise ConfigError(f"unknown flow {name!r} (flows: {', '.join(sorted(project.flows))})")
    return project.flows[name]


@app.command("run")
def run(ctx: typer.Context, flow: str = typer.Argument(..., help="Flow name."),
        limit: int = typer.Option(None, "--limit", help="Check only the first N rows."),
        all_rules: bool = typer.Option(False, "--all", help="Also list rules that passed.")
        ) -> None:
    """Read, map and validate FLOW's source and run its expectations; load nothing.

    Exits 1 when a critical rule fails, 4 when so many rows fail that the flow's
    quality gate would stop a run.
    """
    from crm2erp.engine import Engine
    from crm2erp.quality.gx.check import check_flow
    from crm2erp.quality.report.mask import Masker

    cfg = settings(ctx)
    project = cfg.load_project()
    spec = _flow(project, flow)
    store = cfg.open_store(create=False)
    try:
        with Engine(project, store) as engine:
            runner = engine.runner(flow)
            outcome = check_flow(runner, limit=limit)
    finally:
        store.close()
    masker = Masker.for_flow(spec, [runner.inbound.spec, runner.outbound.spec])
    table = Table(title=literal(f"{flow}: {outcome.tally.rows} row(s) checked"),
                  title_justify="left")
    for column in ("rule", "severity", "evaluated", "failed", "result", "examples"):
        table.add_column(column, overflow="fold")
    for result in sorted(outcome.tally.results(), key=lambda r: (r.success, -r.failed)):
        if result.success and not all_rules:
            continue
        examples = ", ".join(f"{s['key']}={masker.value(result.column, s['value'])!r}"
                             for s in result.sample[:3] if s.get("key") is not None)
        style = {"critical": "red", "warning": "yellow"}.get(result.severity, "blue")
        table.add_row(literal(result.rule), literal(result.severity, style),
                      str(result.evaluated), str(result.failed),
                      "passed" if result.success else "[red]failed[/]", literal(examples))
    console.print(table)
    critical = outcome.critical_failures
    threshold = spec.quality.threshold if spec.quality else None
    share = outcome.tally.rejected / outcome.tally.rows if outcome.tally.rows else 0.0
    if critical and threshold is not None and share > threshold:
        console.print(f"[red]{critical} critical failure(s)[/]: {share:.1%} of the rows fail, "
                      f"above the threshold of {threshold:.1%}: the quality gate would stop "
                      "a run")
        exit_with(EXIT_QUALITY_GATE)
    if critical:
        console.print(f"[red]{critical} critical failure(s)[/]: these rows would go to the "
                      "dead letters")
    else:
        console.print("[green]no critical failures[/]")
    exit_with(EXIT_PROBLEMS if critical else EXIT_OK)


@app.command("export")
def export(ctx: typer.Context, flow: str = typer.Argument(..., help="Flow name."),
           out: Path = typer.Option(None, "--out", "-o",
                                    help="File to write (default: print).")) -> None:
    """Write FLOW's expectation suite as Great Expectations JSON."""
    from crm2erp.quality.gx.suite import suite_json

    spec = _flow(settings(ctx).load_project(), flow)
    text = json.dumps(suite_json(spec), indent=2, sort_keys=True, default=str) + "\n"
    if out is None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    out.write_text(text, encoding="utf-8")
    console.print(literal(f"wrote {out}"))

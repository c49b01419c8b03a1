"""``crm2erp report RUN_ID``: the steward report of one run, as HTML or JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from crm2erp.cli.context import settings
from crm2erp.cli.output import console, literal
from crm2erp.errors import ConfigError


def _flow_and_mappings(cfg, flow_name: str):
    """The run's FlowSpec and mappings when the project is at hand (for the PII mask)."""
    try:
        project = cfg.load_project()
    except ConfigError:
        return None, []
    flow = project.flows.get(flow_name)
    if flow is None:
        return None, []
    return flow, [project.mapping(flow.source_mapping_path),
                  project.mapping(flow.target_mapping_path)]


def report(ctx: typer.Context, run_id: int = typer.Argument(..., metavar="RUN_ID"),
           out: Path = typer.Option(None, "--out", "-o", help="File to write."),
           as_json: bool = typer.Option(False, "--json", help="JSON instead of HTML.")) -> None:
    """Write the steward report of RUN_ID (HTML; --json for JSON on stdout or --out)."""
    from crm2erp.quality.report import collect, render_html, render_json, reports_dir

    cfg = settings(ctx)
    store = cfg.open_store(create=False)
    try:
        flow_name = store.get_run(run_id).flow
        flow, mappings = _flow_and_mappings(cfg, flow_name)
        folder = reports_dir(store)
        target = out or (None if as_json else (folder or Path.cwd()) / f"run-{run_id}.html")
        data = collect(store, run_id, flow=flow, mappings=mappings)
    finally:
        store.close()
    text = render_json(data) if as_json else render_html(data)
    if target is None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    console.print(literal(f"wrote {target}"))

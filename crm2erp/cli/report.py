"""``crm2erp report [RUN_ID]``: the steward report as static HTML (the console's pages)."""

from __future__ import annotations

from pathlib import Path

import typer

from crm2erp.cli.context import settings
from crm2erp.cli.output import console, literal, print_json


def write_site(cfg, folder: Path, unmask: bool, run_id: int | None = None) -> list[Path]:
    """The console's pages into ``folder`` (``crm2erp report`` and ``serve --export``),
    masked per the flows' ``quality.mask`` unless ``unmask`` (the project must load:
    a report is never unmasked by accident). ``run_id``: that run must exist."""
    from crm2erp.console.export import export_site
    from crm2erp.console.views import flow_masker

    project = None if unmask else cfg.load_project()
    store = cfg.open_store(create=False)
    try:
        if run_id is not None:
            store.get_run(run_id)   # an unknown id: a config error naming it
        return export_site(store, folder, lambda flow: flow_masker(project, flow))
    finally:
        store.close()


def report(ctx: typer.Context,
           run_id: int = typer.Argument(None, metavar="RUN_ID",
                                        help="The run whose page to name (default: the index)."),
           out: Path = typer.Option(None, "--out", "-o", metavar="DIR",
                                    help="Folder to write (default: the reports folder, "
                                    "else ./reports)."),
           as_json: bool = typer.Option(False, "--json", help="Print RUN_ID's data as JSON "
                                        "instead of writing pages."),
           unmask: bool = typer.Option(False, "--unmask", help="Show the fields the flows' "
                                       "quality.mask names in full (personal data).")) -> None:
    """Write the steward report: index.html, a page per flow and per run (a finished
    run's page is never rewritten), the same pages as `crm2erp serve --export`."""
    from crm2erp.quality.report import reports_dir

    cfg = settings(ctx)
    if as_json:
        _print_json(cfg, run_id, unmask)
        return
    store = cfg.open_store(create=False)
    try:
        folder = out or reports_dir(store) or Path("reports")
    finally:
        store.close()
    written = write_site(cfg, folder, unmask, run_id)
    page = folder / ("index.html" if run_id is None else f"run-{run_id}.html")
    console.print(literal(f"wrote {len(written)} file(s) to {folder}; open {page}"),
                  soft_wrap=True)


def _print_json(cfg, run_id: int | None, unmask: bool) -> None:
    from crm2erp.console.export import run_data
    from crm2erp.console.views import flow_masker

    if run_id is None:
        raise typer.BadParameter("--json needs a RUN_ID", param_hint="RUN_ID")
    project = None if unmask else cfg.load_project()
    store = cfg.open_store(create=False)
    try:
        run = store.get_run(run_id)
        data = run_data(store, run, flow_masker(project, run.flow))
    finally:
        store.close()
    print_json(data)

"""``crm2erp serve``: the steward's console, a local web app over the state store."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from crm2erp.cli.context import settings
from crm2erp.console import DEFAULT_HOST, DEFAULT_PORT, PASSWORD_ENV, allowed_hosts, check_bind
from crm2erp.errors import ConfigError


def serve(ctx: typer.Context,
          host: str = typer.Option(DEFAULT_HOST, "--host",
                                   help="Address to listen on; anything but loopback needs "
                                   f"{PASSWORD_ENV} set."),
          port: int = typer.Option(DEFAULT_PORT, "--port", help="Port to listen on."),
          unmask: bool = typer.Option(False, "--unmask", help="Show the fields the flows' "
                                      "quality.mask names in full (personal data)."),
          export: Path = typer.Option(None, "--export", metavar="DIR", help="Write the run "
                                      "pages as static HTML files into DIR (index.html, one "
                                      "page per flow and per run) and exit.")
          ) -> None:
    """Start the steward's console: flows, runs, dead letters (retry, discard),
    reconciliation and duplicate review in the browser, on the same state store as
    the other commands.

    Bound to anything but 127.0.0.1/localhost it asks for the password in the
    environment variable CRM2ERP_CONSOLE_PASSWORD (HTTP basic auth, any user name).
    With --export DIR it writes the run pages as static files instead (for e-mail
    or CI artefacts): a finished run's page is never rewritten."""
    password = os.environ.get(PASSWORD_ENV) or None
    check_bind(host, password)
    try:
        from crm2erp.console.app import create_app, listen
    except ImportError as exc:
        raise ConfigError(f"crm2erp serve needs the console extra ({exc.name} is missing): "
                          "pip install 'crm2erp[console]'") from None
    cfg = settings(ctx)
    if export is not None:
        _export(cfg, export, unmask)
        return
    app = create_app(cfg.resolved_state_url(), cfg.project, password=password,
                     allowed_hosts=allowed_hosts(host), unmask=unmask)
    typer.echo(f"crm2erp console on http://{host}:{port}/ (Ctrl+C stops it)")
    listen(app, host, port)


def _export(cfg, folder: Path, unmask: bool) -> None:
    from crm2erp.console.export import export_site

    project = None if unmask else cfg.load_project()
    store = cfg.open_store()
    try:
        written = export_site(store, folder, project)
    finally:
        store.close()
    typer.echo(f"wrote {len(written)} page(s) to {folder} (open {folder / 'index.html'})")

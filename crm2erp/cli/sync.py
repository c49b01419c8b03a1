"""``crm2erp sync run``: run flows now."""

from __future__ import annotations

from contextlib import nullcontext

import typer
from rich.table import Table

from crm2erp.cli.context import exit_with, settings
from crm2erp.cli.exitcodes import for_status
from crm2erp.cli.output import (
    COLUMNS,
    console,
    counts_table,
    json_option,
    literal,
    print_json,
    progress_bar,
)
from crm2erp.errors import ConfigError

app = typer.Typer(no_args_is_help=True, help="Run syncs.")


@app.command("run")
def run(
    ctx: typer.Context,
    flows: list[str] = typer.Argument(None, help="Flow names; all enabled flows if omitted."),
    full_refresh: bool = typer.Option(False, "--full-refresh",
                                      help="Read the whole source, ignoring the watermark."),
    since: str = typer.Option(None, "--since", help="Backfill: read from this ISO date/time."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Show what would change; write nothing."),
    lineage_file: str = typer.Option(
        None, "--lineage-file", metavar="PATH",
        help="Append OpenLineage run events (one JSON per line) to PATH."),
    lineage_url: str = typer.Option(
        None, "--lineage-url", metavar="URL",
        help="POST OpenLineage run events to URL (e.g. http://marquez:5000)."),
    as_json: bool = json_option(),
) -> None:
    """Run FLOWS (parents first) and print what they did."""
    from crm2erp.engine import Engine, order_flows, parse_since
    from crm2erp.engine.status import held_back

    if full_refresh and since:
        raise ConfigError("--full-refresh and --since exclude each other: pick one")
    cfg = settings(ctx)
    project = cfg.load_project()
    names = flows or [n for n, f in project.flows.items() if f.enabled]
    order = order_flows(project.flows, names)
    mode = "full_refresh" if full_refresh else "since" if since else "incremental"
    start = parse_since(since) if since else None
    if lineage_file and lineage_url:
        raise ConfigError("--lineage-file and --lineage-url exclude each other: pick one")
    lineage = _lineage(project, lineage_file, lineage_url) \
        if lineage_file or lineage_url else None
    store = cfg.open_store()
    results = []
    try:
        with Engine(project, store) as engine, progress_bar() as bar:
            for name in order:
                task = bar.add_task(name, total=None, counts="")
                with lineage.track(name) if lineage else nullcontext({}) as tracked:
                    result = tracked["result"] = engine.run(
                        name, mode=mode, since=start, dry_run=dry_run,
                        progress=lambda r, t=task: bar.update(
                            t, counts=f"read {r.counts['read']}  written "
                                      f"{r.counts['created'] + r.counts['updated']}"))
                bar.remove_task(task)
                results.append(result)
    finally:
        store.close()
    failed = sum(held_back(r.counts) for r in results)
    code = for_status(r.status for r in results)
    if as_json:
        print_json(_summary(results, dry_run, failed))
        exit_with(code)
    console.print(counts_table("dry run: nothing was written" if dry_run else "sync", results))
    if dry_run:
        _print_changes(results)
    if failed and dry_run:
        console.print(f"[yellow]{failed} record(s) would go to the dead letters[/] "
                      "(a dry run records nothing)")
    elif failed:
        console.print(f"[yellow]{failed} record(s) went to the dead letters[/]: "
                      "see `crm2erp dlq list`")
    exit_with(code)


def _lineage(project, path: str | None, url: str | None):
    """The OpenLineage emitter writing to ``path`` or posting to ``url`` (needs the
    ``lineage`` extra)."""
    try:
        from crm2erp.lineage import Lineage, file_client, http_client
    except ImportError as exc:
        raise ConfigError(f"--lineage-file/--lineage-url need the OpenLineage client "
                          f"({exc.name} is not installed): pip install 'crm2erp[lineage]'"
                          ) from None
    if url:
        return Lineage(http_client(url), project)
    from pathlib import Path

    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise ConfigError(f"--lineage-file {path}: the folder {folder} does not exist")
    return Lineage(file_client(path), project)


def _print_changes(results, limit: int = 50) -> None:
    for result in results:
        changes = [c for c in result.changes if c.action != "unchanged"]
        if not changes:
            console.print(literal(f"{result.flow}: no changes"))
            continue
        table = Table(title=literal(f"{result.flow}: {len(changes)} change(s) would be written"),
                      title_justify="left")
        table.add_column("action")
        table.add_column("key")
        table.add_column("fields")
        for change in changes[:limit]:
            fields = ", ".join(f"{k}={v!r}" for k, v in change.fields.items()
                               if not isinstance(v, list | dict))
            table.add_row(literal(change.action), literal(change.key), literal(fields))
        console.print(table)
        if len(changes) > limit:
            console.print(f"... and {len(changes) - limit} more")


def _summary(results, dry_run: bool, failed: int) -> dict:
    """The final summary of ``sync run --json``: ``dead_letters`` counts the records of
    these runs that went (or, in a dry run, would go) to the dead letters;
    ``new_dead_letters`` those of them not already held back before."""
    from crm2erp.engine.status import held_back, shown_status

    flows = []
    for r in results:
        item = {"flow": r.flow, "run_id": r.run_id, "mode": r.mode, "partition": r.partition,
                "status": shown_status(r.status, r.mode),
                "counts": {**dict.fromkeys(COLUMNS, 0), **r.counts},
                "dead_letters": held_back(r.counts), "new_dead_letters": r.new_dead_letters,
                "seconds": round(r.seconds, 3),
                "warnings": r.warnings}
        if dry_run:
            item["changes"] = [{"action": c.action, "key": c.key, "fields": c.fields}
                               for c in r.changes if c.action != "unchanged"]
        flows.append(item)
    return {"dry_run": dry_run, "flows": flows, "dead_letters": failed}

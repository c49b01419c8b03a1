"""``crm2erp dlq``: list, show, retry and discard dead letters."""

from __future__ import annotations

from dataclasses import asdict

import typer
from rich.table import Table
from rich.text import Text

from crm2erp.cli.context import EXIT_OK, EXIT_PROBLEMS, exit_with, settings
from crm2erp.cli.exitcodes import for_status
from crm2erp.cli.output import console, counts_table, json_option, literal, print_json
from crm2erp.errors import ConfigError
from crm2erp.jsonutil import dumps

app = typer.Typer(no_args_is_help=True, help="Dead letters: records that could not go through.")
STATUSES = ("open", "parked", "resolved", "discarded", "all")


def _status_filter(status: str):
    if status not in STATUSES:
        raise ConfigError(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    return None if status == "all" else status


@app.command("list")
def list_(ctx: typer.Context,
          flow: str = typer.Option(None, "--flow", help="Only this flow."),
          status: str = typer.Option("open", "--status", help="/".join(STATUSES)),
          limit: int = typer.Option(100, "--limit"),
          as_json: bool = json_option()) -> None:
    """List dead letters, newest first."""
    store = settings(ctx).open_store(create=False)
    try:
        letters = store.dead_letters(flow=flow, status=_status_filter(status), limit=limit)
    finally:
        store.close()
    if as_json:
        print_json({"dead_letters": [asdict(x) for x in letters]})
        return
    if not letters:
        console.print("no dead letters")
        return
    table = Table(title=f"{len(letters)} dead letter(s)", title_justify="left")
    for column in ("id", "flow", "key", "stage", "attempts", "status", "error"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(str(letter.id), literal(letter.flow), literal(letter.source_key),
                      literal(letter.stage), str(letter.attempts), literal(letter.status),
                      literal(letter.error))
    console.print(table)


@app.command("show")
def show(ctx: typer.Context, letter_id: int = typer.Argument(..., metavar="ID"),
         as_json: bool = json_option()) -> None:
    """Show one dead letter with its full error and payload."""
    store = settings(ctx).open_store(create=False)
    try:
        letter = store.get_dead_letter(letter_id)
    finally:
        store.close()
    if as_json:
        print_json(asdict(letter))
        return
    console.print(Text.assemble((f"#{letter.id}", "bold"), literal(
        f" flow {letter.flow}, key {letter.source_key}, stage {letter.stage}, "
        f"status {letter.status}, attempts {letter.attempts}")))
    console.print(Text.assemble(("error:", "bold"), " ", literal(letter.error)))
    # plain JSON (no markup, no padding): it can be piped into jq as it is
    console.print(literal(dumps(letter.payload, indent=2)), soft_wrap=True)


def _select(store, ids: list[int], flow: str | None, all_: bool):
    if ids:
        return [store.get_dead_letter(i) for i in ids]
    if flow or all_:
        return store.dead_letters(flow=flow, status=("open", "parked"), limit=1_000_000)
    raise ConfigError("name dead letter ids, or --flow FLOW, or --all")


@app.command("retry")
def retry(ctx: typer.Context,
          ids: list[int] = typer.Argument(None, metavar="[ID]..."),
          flow: str = typer.Option(None, "--flow", help="Every open one of this flow."),
          all_: bool = typer.Option(False, "--all", help="Every open one.")) -> None:
    """Run dead letters again through their flow (after fixing the mapping or data)."""
    from crm2erp.engine import retry_dead_letters

    cfg = settings(ctx)
    project = cfg.load_project()
    store = cfg.open_store(create=False)
    try:
        letters, results, still = retry_dead_letters(project, store,
                                                     _select(store, ids, flow, all_))
    finally:
        store.close()
    if not letters:
        console.print("nothing to retry")
        return
    console.print(counts_table("retry", results))
    if still:
        console.print(f"{len(still)} of the {len(letters)} retried dead letter(s) are still "
                      f"held back: {', '.join(f'#{i}' for i in still)}")
    exit_with(max(for_status(r.status for r in results), EXIT_PROBLEMS if still else EXIT_OK))


@app.command("discard")
def discard(ctx: typer.Context,
            ids: list[int] = typer.Argument(None, metavar="[ID]..."),
            flow: str = typer.Option(None, "--flow"),
            all_: bool = typer.Option(False, "--all")) -> None:
    """Mark dead letters as discarded: they will not be retried."""
    store = settings(ctx).open_store(create=False)
    try:
        letters = _select(store, ids, flow, all_)
        count = store.set_dead_letter_status([x.id for x in letters], "discarded")
    finally:
        store.close()
    console.print(f"discarded {count} dead letter(s)")

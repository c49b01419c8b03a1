"""``crm2erp demo``: the whole loop on two SQLite files, no server needed."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from crm2erp.cli.output import console, counts_table, literal


def demo(
    directory: Path = typer.Option(Path("crm2erp-demo"), "--dir",
                                   help="Working folder for the sample systems and state."),
    reset: bool = typer.Option(False, "--reset", help="Start again from fresh sample data."),
    accounts: int = typer.Option(120, "--accounts", min=10, max=100_000,
                                 help="How many sample CRM accounts to create."),
    systems: str = typer.Option(None, "--systems", help=(
        "Run a shipped flow pack against in-process API emulators instead of the "
        "SQLite systems, e.g. salesforce-sap.")),
    runs: int = typer.Option(2, "--runs", min=1, max=10, help=(
        "With --systems: how many times to sync against the same emulators.")),
) -> None:
    """Sync a sample CRM into a sample ERP and the ERP's invoices back."""
    from crm2erp.demo import run_demo
    from crm2erp.store import StateStore

    if systems:
        _demo_emulated(directory, systems, accounts=accounts, runs=runs)
        return

    with console.status("syncing CRM -> ERP -> CRM ..."):
        outcome = run_demo(directory, accounts=accounts, reset=reset)
    what = "first run: sample systems created" if outcome.first_run else "run again"
    console.print(counts_table(f"crm2erp demo ({what}) in {outcome.directory}",
                               outcome.results))
    if outcome.invoices_billed:
        console.print(f"the ERP billed {outcome.invoices_billed} new order(s) "
                      "between the order sync and the invoice return flow")
    store = StateStore.open(outcome.state_url)
    try:
        letters = store.dead_letters(status=("open", "parked"), limit=20)
        held = store.count_dead_letters(None, "open") + store.count_dead_letters(None, "parked")
    finally:
        store.close()
    if letters:
        shown = f", {len(letters)} shown" if held > len(letters) else ""
        table = Table(title=f"{held} records held back (dead letters and parked{shown})",
                      title_justify="left")
        for column in ("flow", "key", "stage", "reason"):
            table.add_column(column, overflow="fold")
        for letter in letters:
            table.add_row(literal(letter.flow), literal(letter.source_key), literal(letter.stage),
                          literal(letter.error))
        console.print(table)
    if outcome.changed == 0:
        console.print("[green]no changes[/]: every record was already in sync")
    else:
        console.print(f"{outcome.changed} record(s) written. Run `crm2erp demo` again: "
                      "it finds nothing to change.")
    _next_steps(outcome.project)


def _next_steps(project: Path) -> None:
    """The project the demo ran, and the commands to try on it next."""
    try:
        shown = project.relative_to(Path.cwd())
    except ValueError:
        shown = project
    console.print(f"\nthe demo's project (flows, mappings, connections, state) is in "
                  f"{escape(str(shown))}; try:")
    for command in ("status", "dlq list", "mappings validate", "sync run --dry-run"):
        console.print(f"  crm2erp -p {escape(str(shown))} {command}", soft_wrap=True)


def _demo_emulated(directory: Path, pack: str, *, accounts: int, runs: int) -> None:
    """``--systems PACK``: the pack against emulators, one summary table per run."""
    from crm2erp.demo.emulated import run_emulated_demo
    from crm2erp.store import StateStore

    with console.status(f"starting the emulators and syncing with the {pack} pack ..."):
        outcome = run_emulated_demo(directory, pack=pack, accounts=accounts, runs=runs)
    for number, results in enumerate(outcome.runs, start=1):
        console.print(counts_table(f"crm2erp demo --systems {pack}: run {number} of "
                                   f"{len(outcome.runs)}", results))
        if outcome.invoices_billed[number - 1]:
            console.print(f"SAP's billing run billed {outcome.invoices_billed[number - 1]} "
                          "new order(s) before the invoice return flow")
    store = StateStore.open(outcome.state_url)
    try:
        letters = store.dead_letters(status=("open", "parked"), limit=10)
    finally:
        store.close()
    for letter in letters:
        console.print(literal(f"held back: {letter.flow} {letter.source_key} ({letter.stage}): "
                              f"{letter.error}"))
    if outcome.changed() == 0:
        console.print("[green]no changes[/]: the last run found every record in sync")
    else:
        console.print(f"{outcome.changed()} record(s) written by the last run")
    console.print("the emulators lived for this command only; the next `crm2erp demo "
                  f"--systems {pack}` starts them and {outcome.state_url} afresh")

"""``crm2erp conflicts``: fields two systems both changed, and which value stayed."""

from __future__ import annotations

import typer
from rich.table import Table

from crm2erp.cli.context import settings
from crm2erp.cli.output import console, json_option, literal, print_json


def conflicts(ctx: typer.Context,
              flow: str = typer.Option(None, "--flow", help="Only this flow."),
              limit: int = typer.Option(50, "--limit"),
              as_json: bool = json_option()) -> None:
    """List logged conflicts, newest first (see the flow's ownership and conflict_rule)."""
    store = settings(ctx).open_store(create=False)
    try:
        rows = store.list_conflicts(flow, limit=limit)
    finally:
        store.close()
    if as_json:
        print_json({"conflicts": rows})
        return
    if not rows:
        console.print("no conflicts")
        return
    table = Table(title=f"{len(rows)} conflict(s)", title_justify="left")
    for column in ("when", "flow", "record", "field", "sent by", "sent", "kept", "winner",
                   "rule"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["created_at"].strftime("%Y-%m-%d %H:%M:%S"), literal(row["flow"]),
                      literal(f"{row['entity']} {row['canonical_id'][:8]}"),
                      literal(row["field"]), literal(row["system"]),
                      literal(repr(row["incoming"])), literal(repr(row["kept"])),
                      literal(row["winner"]), literal(row["rule"]))
    console.print(table)

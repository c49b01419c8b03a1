"""Rendering for the CLI: one rich console, logging through it, tables."""

from __future__ import annotations

__all__ = ["console", "err_console", "setup_logging", "counts_table", "progress_bar"]

import logging
import os
import sys

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from crm2erp.redact import RedactingFilter

#: Outside a terminal (a pipe, a CI log) nothing is cut to 80 columns: lines and
#: tables keep their full width unless COLUMNS says otherwise.
_PIPE_WIDTH = 1000


def _width(stream) -> int | None:
    if "COLUMNS" in os.environ or stream.isatty():
        return None   # rich's own choice: the terminal's width, or COLUMNS
    return _PIPE_WIDTH


console = Console(highlight=False, width=_width(sys.stdout))
err_console = Console(stderr=True, highlight=False, width=_width(sys.stderr))

COLUMNS = ("read", "created", "updated", "unchanged", "skipped", "failed", "parked")


def setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=False)
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s", force=True)


def counts_table(title: str, results) -> Table:
    """One row per run result, a column per counter, and a total row."""
    table = Table(title=title, title_justify="left")
    table.add_column("flow")
    table.add_column("run", justify="right")
    for name in COLUMNS:
        table.add_column(name, justify="right")
    table.add_column("status")
    totals = dict.fromkeys(COLUMNS, 0)
    for result in results:
        for name in COLUMNS:
            totals[name] += result.counts[name]
        style = {"succeeded": "green", "partial": "yellow"}.get(result.status, "red")
        table.add_row(result.flow, str(result.run_id or "-"),
                      *(str(result.counts[name]) for name in COLUMNS),
                      f"[{style}]{result.status}[/]")
    if len(results) > 1:
        table.add_row("[b]total[/]", "", *(f"[b]{totals[n]}[/]" for n in COLUMNS), "",
                      end_section=True)
    return table


def progress_bar() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                    TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                    console=err_console, transient=True)

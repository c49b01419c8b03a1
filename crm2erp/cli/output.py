"""Rendering for the CLI: one rich console, logging through it, tables."""

from __future__ import annotations

__all__ = ["console", "err_console", "setup_logging", "json_logging", "counts_table",
           "progress_bar", "plain", "literal", "print_json", "json_option"]

import logging
import os
import re
import sys

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

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

# shown as escapes, never sent to the terminal: C0/C1 controls (ANSI sequences),
# bidi overrides, and lone surrogates (undecodable bytes of a command-line argument)
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
                     "\ud800-\udfff]")


def plain(value: object) -> str:
    """``value`` as text that is safe on a terminal: control characters become
    visible escapes (``\\x1b``); nothing else changes."""
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape",
                                                   "backslashreplace").decode("ascii"), text)


def literal(value: object, style: str = "") -> Text:
    """User-originated ``value`` as a rich Text: shown as is, never read as markup."""
    return Text(plain(value), style=style)


def json_option():
    """The ``--json`` option of every command that can print JSON."""
    import typer

    return typer.Option(False, "--json", help="Print JSON on stdout (nothing else there).")


#: What JSON may carry raw but a terminal must not get: C1 controls, DEL and the
#: bidirectional overrides (JSON escapes C0 controls itself); written as \uXXXX.
_JSON_UNSAFE = {c: f"\\u{c:04x}" for c in (*range(127, 160), *range(0x202A, 0x202F),
                                           *range(0x2066, 0x206A))}


def print_json(value: object) -> None:
    """``value`` as JSON on stdout, nothing else: for ``--json`` (piped into jq).
    Characters that would act on a terminal are escaped, the JSON stays the same."""
    from crm2erp.jsonutil import dumps

    sys.stdout.write(dumps(value, indent=2).translate(_JSON_UNSAFE) + "\n")
    sys.stdout.flush()


COLUMNS = ("read", "created", "updated", "unchanged", "skipped", "failed", "parked")


def _printable(record: logging.LogRecord) -> bool:
    """Log lines carry record values too: no control character reaches the terminal."""
    message = record.getMessage()
    if plain(message) != message:
        record.msg, record.args = plain(message), None
    if record.exc_text:
        record.exc_text = plain(record.exc_text)
    return True


def setup_logging(verbose: int, *, json_lines: bool = False) -> None:
    """Log to stderr at WARNING (INFO with -v, DEBUG with -vv), through rich, or as one
    JSON object per line with the run's flow, run id, batch and partition."""
    level = logging.WARNING - 10 * min(verbose, 2)
    if json_lines:
        from crm2erp.logcontext import JsonLogFormatter

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLogFormatter())
    else:
        handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=False)
    handler.addFilter(RedactingFilter())
    handler.addFilter(_printable)
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s", force=True)
    logging.captureWarnings(json_lines)   # Python warnings become JSON lines too


def json_logging() -> bool:
    """Whether log lines go out as JSON (``--log-format json``)."""
    from crm2erp.logcontext import JsonLogFormatter

    return any(isinstance(h.formatter, JsonLogFormatter) for h in logging.getLogger().handlers)


def counts_table(title: str, results) -> Table:
    """One row per run result, a column per counter, and a total row."""
    from crm2erp.engine.status import shown_status

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
        table.add_row(literal(result.flow), str(result.run_id or "-"),
                      *(str(result.counts[name]) for name in COLUMNS),
                      literal(shown_status(result.status, result.mode), style))
    if len(results) > 1:
        table.add_row("[b]total[/]", "", *(f"[b]{totals[n]}[/]" for n in COLUMNS), "",
                      end_section=True)
    return table


def progress_bar() -> Progress:
    """A live progress line on a terminal; nothing at all elsewhere (a pipe, a CI log,
    ``--log-format json``), where stderr carries only log lines."""
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                    TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                    console=err_console, transient=True,
                    disable=not err_console.is_terminal or json_logging())

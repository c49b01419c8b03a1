"""The ``crm2erp`` command: the root app, global options and error handling.

Exit codes: one meaning each, the table in :mod:`crm2erp.cli.exitcodes` (printed
in docs/cli.md). User errors print a message, never a traceback (``--debug``
shows one).
"""

from __future__ import annotations

__all__ = ["app", "main", "Settings", "settings", "exit_with", "EXIT_OK", "EXIT_PROBLEMS",
           "EXIT_USAGE", "EXIT_NOT_RUN", "EXIT_QUALITY_GATE"]

import logging
import sys
from pathlib import Path

import typer
from rich.text import Text

from crm2erp.cli.context import Settings, exit_with, settings
from crm2erp.cli.exitcodes import (
    EXIT_NOT_RUN,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_QUALITY_GATE,
    EXIT_USAGE,
    for_error,
)
from crm2erp.cli.output import err_console, json_logging, literal, setup_logging
from crm2erp.errors import ConfigError, Crm2ErpError, LockHeldError
from crm2erp.redact import redact, redact_traceback

log = logging.getLogger("crm2erp.cli")


def _no_value_hint_on_flags() -> None:
    """typer's rich help shows ``--debug <bool>`` and ``-v <int>`` for flags that take
    no value; show them bare, as click's plain help does."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_crm2erp", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag or self.count else shown(self, ctx)

    display_type_rich._crm2erp = True
    TyperOption.display_type_rich = display_type_rich


_no_value_hint_on_flags()

app = typer.Typer(no_args_is_help=True, add_completion=True, rich_markup_mode="rich",
                  help="crm2erp keeps CRM and ERP systems consistent.")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"crm2erp {version('crm2erp')}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def root(
    ctx: typer.Context,
    project: Path = typer.Option(Path("."), "--project", "-p", envvar="CRM2ERP_PROJECT",
                                 help="Folder with connections.yaml and *.flow.yaml files."),
    state: str = typer.Option(None, "--state", envvar="CRM2ERP_STATE_URL",
                              help="State store URL (default: the project's crm2erp.yaml "
                              "state:, else sqlite:///crm2erp-state.db)."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
    log_format: str = typer.Option(
        "text", "--log-format", metavar="text|json", envvar="CRM2ERP_LOG_FORMAT",
        help="Log lines on stderr as text, or as one JSON object per line (ts, level, "
        "logger, message, flow, run_id, batch, partition)."),
    _version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                  help="Print the version and exit."),
) -> None:
    if log_format not in ("text", "json"):
        raise typer.BadParameter(f"{log_format!r}: expected text or json",
                                 param_hint="--log-format")
    setup_logging(verbose + (2 if debug else 0), json_lines=log_format == "json")
    ctx.obj = Settings(project=project, state_url=state, debug=debug)


def _register_commands() -> None:
    if app.registered_groups:   # main() called again in the same process (tests)
        return
    from crm2erp.cli import conflicts, demo, dlq, emulator, mappings, schemas, status, sync

    app.add_typer(mappings.app, name="mappings")
    app.add_typer(schemas.app, name="schemas")
    app.add_typer(sync.app, name="sync")
    app.add_typer(dlq.app, name="dlq")
    app.add_typer(emulator.app, name="emulator")
    app.command("status")(status.status)
    from crm2erp.cli import unlock  # release a flow's lock (issue 10)
    app.command("unlock")(unlock.unlock)
    app.command("conflicts")(conflicts.conflicts)
    app.command("demo")(demo.demo)
    from crm2erp.cli import quality, reconcile, report  # data quality (issue 6)
    app.add_typer(quality.app, name="quality")
    app.command("report")(report.report)
    app.command("reconcile")(reconcile.reconcile)
    from crm2erp.cli import dedupe  # steward review of duplicates (issue 7)
    app.add_typer(dedupe.app, name="dedupe")
    from crm2erp.cli import airflow  # no Airflow import: it copies files (issue 17)
    app.add_typer(airflow.app, name="airflow")
    from crm2erp.cli import check, init  # scaffold and check a project (issue 14)
    app.command("init")(init.init)
    app.command("check")(check.check)
    from crm2erp.cli import serve  # the steward's console (issue 15)
    app.command("serve")(serve.serve)


def _report(exc: BaseException, label: str, style: str, debug: bool) -> None:
    """Print ``exc`` as one message (its traceback too with --debug): redacted,
    and shown literally, never read as markup."""
    if json_logging():   # one JSON line, like every other line on stderr
        log.error("%s %s", label, redact(str(exc)),
                  exc_info=exc if debug else None)
        return
    if debug:
        err_console.print(literal(redact_traceback(exc)), soft_wrap=True)
    err_console.print(Text.assemble((label, style), " ", literal(redact(str(exc)))),
                      soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning crm2erp errors into messages and exit codes."""
    _register_commands()
    debug = "--debug" in (argv if argv is not None else sys.argv)
    try:
        # standalone: typer reports usage errors itself (exit 2) and ends with SystemExit
        app(args=argv, prog_name="crm2erp")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ConfigError as exc:
        _report(exc, "configuration error:", "red", debug)
        return EXIT_USAGE
    except LockHeldError as exc:
        _report(exc, "locked:", "yellow", debug)
        return EXIT_NOT_RUN
    except Exception as exc:  # noqa: BLE001 - no traceback, one message and its exit code
        code = for_error(exc)
        known = isinstance(exc, Crm2ErpError)
        label = {EXIT_QUALITY_GATE: "stopped by the quality gate:"}.get(
            code, "error:" if known else f"unexpected error ({type(exc).__name__}):")
        _report(exc, label, "red", debug)
        if not known and not debug and not json_logging():
            err_console.print("run again with --debug to see where it happened",
                              style="dim")
        return code
    return EXIT_OK

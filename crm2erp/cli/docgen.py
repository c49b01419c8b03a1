"""``docs/cli.md`` generated from the CLI itself: every command, its usage, arguments
and options, as typer knows them. Regenerate with::

    python -m crm2erp.cli.docgen docs/cli.md

(a test fails when the checked-in page differs from what this prints).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

HEADER = """\
# Command-line reference

Generated from the CLI itself by `python -m crm2erp.cli.docgen docs/cli.md`;
do not edit by hand (a test fails when this page is stale). Global options go
before the command: `crm2erp -p PROJECT sync run`. Every command that lists
things takes `--json` for scripts: JSON on stdout and nothing else.
"""


def _exit_codes() -> list[str]:
    """The exit-code table, from :data:`crm2erp.cli.exitcodes.TABLE`."""
    from crm2erp.cli.exitcodes import TABLE

    return ["## Exit codes", "",
            "Every command exits with one of these codes, each with one meaning:", "",
            "| code | meaning |", "|---|---|",
            *(f"| `{code}` | {_cell(meaning)} |" for code, meaning in TABLE), "",
            "A run's status follows one rule in every mode (a plain run, `--since`, "
            "`--full-refresh`, `dlq retry`): `succeeded`, `partial` (records it read or "
            "retried are in the dead letters), `failed` (an error stopped it), `stopped` (a "
            "quality gate stopped it). A dry run records nothing and says `would succeed` "
            "or `would dead-letter`.", ""]


def _is_option(param: Any) -> bool:
    return param.param_type_name == "option"   # typer vendors its own click


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _default(param: Any) -> str:
    value = param.default
    if value is None or value is False or value == () or callable(value) or (
            _is_option(param) and (param.is_flag or param.count) and not value):
        return ""
    return f" (default: `{value}`)"


def _value(param: Any, ctx: Any) -> str:
    """What the parameter takes: ``str``, ``path``, ``int``..."""
    shown = getattr(param, "display_type", None)   # typer's own parameters
    text = shown(ctx) if shown else getattr(getattr(param, "type", None), "name", "")
    return (text or "").strip("<>")


def _section(command: Any, ctx: Any, path: str) -> list[str]:
    help_text = inspect.cleandoc(command.help or "")
    usage = " ".join([path, *command.collect_usage_pieces(ctx)])
    out = [f"## `{path}`", "", help_text, "", "```text", usage, "```", ""]
    rows = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False) or param.name == "help":
            continue
        if not _is_option(param):
            name = f"`{(param.metavar or param.name).upper()}`"
            value = _value(param, ctx)
        else:
            name = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
            value = "" if param.is_flag or param.count else _value(param, ctx)
        extra = _default(param)
        if _is_option(param) and param.envvar:
            extra += f" (env: `{param.envvar}`)"
        rows.append(f"| {name} | {value} | {_cell((getattr(param, 'help', '') or '') + extra)} |")
    if rows:
        out += ["| argument or option | value | description |", "|---|---|---|", *rows, ""]
    return out


def _walk(command: Any, ctx: Any, path: str) -> list[str]:
    lines = _section(command, ctx, path)
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            sub_ctx = sub.context_class(sub, info_name=name, parent=ctx)
            lines += _walk(sub, sub_ctx, f"{path} {name}")
    return lines


def render() -> str:
    """The Markdown of docs/cli.md."""
    import typer.main

    from crm2erp.cli.app import _register_commands, app

    _register_commands()
    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="crm2erp")
    lines = _exit_codes() + _walk(root, ctx, "crm2erp")
    return HEADER + "\n" + "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

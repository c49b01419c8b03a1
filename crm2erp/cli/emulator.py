"""``crm2erp emulator``: run a connector's local emulator, for offline mapping work."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

import typer

from crm2erp.cli.output import console
from crm2erp.errors import ConfigError

app = typer.Typer(no_args_is_help=True, help="Local emulators of CRM and ERP APIs.")


def _with_emulator() -> list[str]:
    folders = importlib.util.find_spec("crm2erp.connectors").submodule_search_locations
    return sorted(m.name for m in pkgutil.iter_modules(folders) if m.ispkg
                  and importlib.util.find_spec(f"crm2erp.connectors.{m.name}.emulator"))


@app.command("list")
def list_() -> None:
    """Name the connectors that ship an emulator."""
    for name in _with_emulator():
        console.print(name)


@app.command("run", context_settings={"allow_extra_args": True,
                                      "ignore_unknown_options": True,
                                      "help_option_names": []})   # NAME --help: the emulator's
def run(ctx: typer.Context, name: str = typer.Argument(None, help="Connector name."),
        port: int = typer.Option(None, "--port", help="Port on 127.0.0.1.")) -> None:
    """Serve NAME's emulator until Ctrl-C, printing its base URL and test credentials;
    other options go to the emulator itself (e.g. --accounts 25000 --fault-rate 0.1;
    `crm2erp emulator run NAME --help` lists them)."""
    if name in (None, "--help", "-h"):
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    known = _with_emulator()
    if name not in known:
        raise ConfigError(f"no emulator named {name!r} (emulators: {', '.join(known)})")
    module = importlib.import_module(f"crm2erp.connectors.{name}.emulator")
    argv = ([f"--port={port}"] if port is not None else []) + list(ctx.args)
    raise typer.Exit(module.main(argv) or 0)

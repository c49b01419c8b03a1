"""``crm2erp emulator``: run a connector's local emulator, for offline mapping work."""

from __future__ import annotations

import typer

from crm2erp.cli.output import console

app = typer.Typer(no_args_is_help=True, help="Local emulators of CRM and ERP APIs.")


def _with_emulator() -> list[str]:
    from crm2erp import registry

    return sorted(registry.available(registry.EMULATORS))


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
    from crm2erp import registry

    main = registry.load(registry.EMULATORS, name)
    argv = ([f"--port={port}"] if port is not None else []) + list(ctx.args)
    raise typer.Exit(main(argv) or 0)

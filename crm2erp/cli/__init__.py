"""The ``crm2erp`` command-line interface (typer + rich)."""

from crm2erp.cli.app import app, main

__all__ = ["app", "main"]

"""What every ``crm2erp`` command shares: the global settings and the exit codes.

Exit codes: 0 ok; 1 a run finished with dead letters, failed checks or a
failed run; 2 a usage or configuration error; 75 the flow is locked by another
run that is still alive (sysexits' EX_TEMPFAIL). Commands import these from
here; :mod:`crm2erp.cli.app` (the root app, which registers the commands)
re-exports them.
"""

from __future__ import annotations

__all__ = ["Settings", "settings", "exit_with", "EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE",
           "EXIT_LOCKED"]

import os
from dataclasses import dataclass
from pathlib import Path

import typer

from crm2erp.errors import ConfigError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
EXIT_LOCKED = 75   # sysexits.h EX_TEMPFAIL: another live run holds the flow's lock


@dataclass
class Settings:
    project: Path
    state_url: str | None
    debug: bool

    def load_project(self):
        from crm2erp.mapping import load_project

        if not self.project.is_dir():
            raise ConfigError(f"project folder {self.project} does not exist "
                              "(give --project or set CRM2ERP_PROJECT)")
        return load_project(self.project)

    def open_store(self):
        from crm2erp.store import StateStore

        return StateStore.open(self.resolved_state_url())

    def resolved_state_url(self) -> str | None:
        """``--state`` / ``CRM2ERP_STATE_URL``, else the project's ``crm2erp.yaml``
        ``state:``, else None (the store's default file in the working folder)."""
        if self.state_url:
            return self.state_url
        from crm2erp.mapping.loader import project_state_url

        return project_state_url(self.project) if self.project.is_dir() else None


def exit_with(code: int) -> None:
    raise typer.Exit(code)


def settings(ctx: typer.Context) -> Settings:
    return ctx.obj or Settings(Path(os.environ.get("CRM2ERP_PROJECT", ".")),
                               os.environ.get("CRM2ERP_STATE_URL"), False)

"""What every ``crm2erp`` command shares: the global settings and the exit codes.

The exit codes (one meaning each) are defined in :mod:`crm2erp.cli.exitcodes`
and re-exported here with the settings, so a command has one import;
:mod:`crm2erp.cli.app` (the root app, which registers the commands) re-exports them.
"""

from __future__ import annotations

__all__ = ["Settings", "settings", "exit_with", "EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE",
           "EXIT_NOT_RUN", "EXIT_QUALITY_GATE"]

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import typer

from crm2erp.cli.exitcodes import (
    EXIT_NOT_RUN,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_QUALITY_GATE,
    EXIT_USAGE,
)
from crm2erp.errors import ConfigError

log = logging.getLogger("crm2erp.cli")


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

    def open_store(self, *, create: bool = True):
        """The project's state store. A SQLite file that does not exist yet is created,
        with a note naming it; with ``create=False`` (commands that read, or act only on
        what a store holds) the command gets an empty store in memory and writes no file."""
        from crm2erp.store import DEFAULT_URL, StateStore

        url = self.resolved_state_url() or DEFAULT_URL
        missing = _missing_sqlite_file(url)
        if missing and not create:
            log.warning("no state store at %s yet (nothing has run with it); it is not "
                        "created by this command", missing)
            return StateStore.open("sqlite://")
        if missing:
            log.warning("no state store at %s yet: creating a new, empty one (set state: in "
                        "%s or --state to use another)", missing, self.project / "crm2erp.yaml")
        return StateStore.open(url)

    def resolved_state_url(self) -> str | None:
        """``--state`` / ``CRM2ERP_STATE_URL``, else the project's ``crm2erp.yaml``
        ``state:``, else None (the store's default file in the working folder)."""
        if self.state_url:
            return self.state_url
        from crm2erp.mapping.loader import project_state_url

        return project_state_url(self.project) if self.project.is_dir() else None


def _missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``url`` when it does not exist yet, else None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None   # StateStore.open names the problem (a bad port, say)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or database in (None, "", ":memory:") \
            or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


def exit_with(code: int) -> None:
    raise typer.Exit(code)


def settings(ctx: typer.Context) -> Settings:
    return ctx.obj or Settings(Path(os.environ.get("CRM2ERP_PROJECT", ".")),
                               os.environ.get("CRM2ERP_STATE_URL"), False)

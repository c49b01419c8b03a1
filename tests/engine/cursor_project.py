"""A one-flow project (a file or SQL source -> an ERP table on SQLite) for the cursor tests.

Each :class:`CursorProject` lives in its own folder with its own ERP and
state databases, so property tests can build a fresh one per example.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import sqlalchemy as sa

from tests.clirunner import run

IN_MAP = """
mapping: account_in
direction: inbound
entity: Account
fields:
  name: {from: name}
"""
OUT_MAP = """
mapping: customer_out
direction: outbound
entity: Account
fields:
  crm_ref: {from: id}
  name: {from: name}
"""


OPEN: list[CursorProject] = []


class CursorProject:
    """``source`` is the YAML of connection ``src`` (stream ``accounts``);
    ``incremental`` the flow's incremental section (YAML flow mapping);
    ``state_template`` a migrated SQLite state store to start from (a copy of it),
    else the first use of the store migrates a new one."""

    def __init__(self, folder: Path, source: str, incremental: str,
                 state_template: Path | None = None):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.erp_url = f"sqlite:///{folder / 'erp.db'}"
        self.state_url = f"sqlite:///{folder / 'state.db'}"
        if state_template is not None:
            shutil.copyfile(state_template, folder / "state.db")
        self._store = None
        OPEN.append(self)
        meta = sa.MetaData()
        self.customers = sa.Table("customers", meta,
                                  sa.Column("crm_ref", sa.String(40), primary_key=True),
                                  sa.Column("name", sa.String(200)))
        engine = sa.create_engine(self.erp_url)
        meta.create_all(engine)
        engine.dispose()
        files = {
            "connections.yaml": "connections:\n  src:\n" + textwrap.indent(
                textwrap.dedent(source).strip(), "    ") + f"""
  erp:
    type: sql
    url: {self.erp_url}
    streams:
      customers: {{table: customers, key: crm_ref}}
""",
            "accounts.flow.yaml": f"""
flow: accounts
entity: Account
source: {{connection: src, stream: accounts, mapping: in.map.yaml}}
target: {{connection: erp, stream: customers, mapping: out.map.yaml}}
incremental: {incremental}
""",
            "in.map.yaml": IN_MAP, "out.map.yaml": OUT_MAP}
        for name, text in files.items():
            (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")

    @property
    def store(self):
        """The project's state store, opened (and migrated) once."""
        if self._store is None:
            from crm2erp.store import StateStore

            self._store = StateStore.open(self.state_url)
        return self._store

    def close(self) -> None:
        if self in OPEN:
            OPEN.remove(self)
        if self._store is not None:
            self._store.close()
            self._store = None
        OPEN.append(self)

    def run(self, **options):
        """One run of the flow through the engine (FlowRunner), as ``sync run`` does."""
        from crm2erp.engine import Engine
        from crm2erp.mapping import load_project

        with Engine(load_project(self.folder), self.store) as engine:
            return engine.run("accounts", **options)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """``crm2erp --project FOLDER --state URL ARGS``, run in this process."""
        return run(["--project", str(self.folder), "--state", self.state_url, *args],
                   cwd=os.getcwd(), env={**os.environ, "COLUMNS": "200"})

    def erp(self) -> dict[str, str | None]:
        """The ERP's customers read back from its table: crm_ref -> name."""
        engine = sa.create_engine(self.erp_url)
        try:
            with engine.connect() as conn:
                return {r.crm_ref: r.name for r in conn.execute(sa.select(self.customers))}
        finally:
            engine.dispose()

    def dead_letters(self) -> dict[str, str]:
        """Open dead letters: source key -> error."""
        return {d.source_key: d.error
                for d in self.store.dead_letters(flow="accounts", limit=10_000)}

    def watermark(self):
        return self.store.get_watermark("accounts", "accounts")

"""A small CRM -> ERP project on two real SQLite databases, for the security tests.

CRM ``accounts`` (key ``id``; with ``id_column`` the stream identifies records
by another column, so a dead-letter retry replays the stored copy instead of
re-reading the source) -> ERP ``customers`` (key ``crm_ref``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import sqlalchemy as sa

from crm2erp.cli.app import main

NOTE = "Portal password=hunter2; API token: tok-123"

IN_MAP = """\
mapping: in
direction: inbound
entity: Account
fields:
  name: {from: name}
  email: {from: email, transforms: [email]}
  extensions.note: {from: note}
"""
OUT_MAP = """\
mapping: out
direction: outbound
entity: Account
fields:
  crm_ref: {from: id}
  name: {from: name}
  email: {from: email}
  note: {from: extensions.note}
"""


def crm_table(meta: sa.MetaData) -> sa.Table:
    return sa.Table("accounts", meta,
                    sa.Column("id", sa.String(64), primary_key=True),
                    sa.Column("row_no", sa.Integer, unique=True),
                    sa.Column("name", sa.String(500)),
                    sa.Column("email", sa.String(500)),
                    sa.Column("note", sa.Text))


def erp_table(meta: sa.MetaData) -> sa.Table:
    return sa.Table("customers", meta,
                    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("crm_ref", sa.String(64), nullable=False, unique=True),
                    sa.Column("name", sa.String(500)),
                    sa.Column("email", sa.String(500)),
                    sa.Column("note", sa.Text))


def make_project(root: Path, rows: list[dict], *, stored_copies: bool = False,
                 extra_connections: str = "") -> dict:
    """Create both databases and the project; returns paths and URLs."""
    crm_url, erp_url = f"sqlite:///{root / 'crm.db'}", f"sqlite:///{root / 'erp.db'}"
    for url, table in ((crm_url, crm_table), (erp_url, erp_table)):
        meta = sa.MetaData()
        table(meta)
        engine = sa.create_engine(url)
        meta.create_all(engine)
        engine.dispose()
    engine = sa.create_engine(crm_url)
    with engine.begin() as conn:
        if rows:
            conn.execute(crm_table(sa.MetaData()).insert(),
                         [{"row_no": i, **row} for i, row in enumerate(rows, 1)])
    engine.dispose()
    project = root / "project"
    project.mkdir()
    identity = ", id_column: row_no" if stored_copies else ""
    (project / "connections.yaml").write_text(textwrap.dedent(f"""\
        connections:
          crm:
            type: sql
            url: {crm_url}
            streams:
              accounts: {{table: accounts, key: id{identity}}}
          erp:
            type: sql
            url: {erp_url}
            streams:
              customers: {{table: customers, key: crm_ref, id_column: id}}
        """) + extra_connections, encoding="utf-8")
    (project / "accounts.flow.yaml").write_text(textwrap.dedent("""\
        flow: accounts
        entity: Account
        source: {connection: crm, stream: accounts, mapping: in.map.yaml}
        target: {connection: erp, stream: customers, mapping: out.map.yaml}
        """), encoding="utf-8")
    (project / "in.map.yaml").write_text(IN_MAP, encoding="utf-8")
    (project / "out.map.yaml").write_text(OUT_MAP, encoding="utf-8")
    state = f"sqlite:///{root / 'state.db'}"
    return {"project": project, "crm_url": crm_url, "erp_url": erp_url, "state": state,
            "args": ["-p", str(project), "--state", state]}


def erp_rows(erp_url: str) -> dict[str, dict]:
    """The ERP's customers read back from its own database, by crm_ref."""
    engine = sa.create_engine(erp_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(erp_table(sa.MetaData()))).mappings().all()
    engine.dispose()
    return {row["crm_ref"]: dict(row) for row in rows}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``crm2erp ARGV`` in this process: exit code, stdout, stderr."""
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err

"""A project folder for the Tryton flow tests: a CRM in SQL and the session's trytond."""

from __future__ import annotations

__all__ = ["write_project"]

import textwrap
from pathlib import Path

import yaml


def write_project(folder: Path, server, crm_url: str, crm_streams: dict,
                  files: dict[str, str], **erp) -> Path:
    """``folder`` with a ``connections.yaml`` naming the CRM (``crm_streams`` on
    ``crm_url``) and ``server`` (``erp``: more Tryton settings), plus ``files``
    (name -> text, dedented)."""
    connections = {"connections": {
        "crm": {"type": "sql", "url": crm_url, "streams": crm_streams},
        "erp": {"type": "tryton", "url": server.url, "database": server.database,
                "username": server.username, "password": server.password, **erp}}}
    folder.mkdir(exist_ok=True)
    (folder / "connections.yaml").write_text(yaml.safe_dump(connections, sort_keys=False))
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    return folder

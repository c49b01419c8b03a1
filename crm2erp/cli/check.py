"""``crm2erp check``: connect to every connection of the project and check its streams."""

from __future__ import annotations

import typer
from rich.table import Table

from crm2erp.cli.context import settings
from crm2erp.cli.output import console, json_option, literal, print_json
from crm2erp.errors import ConfigError


def _check_one(spec, streams: list[tuple[str, str]]) -> str:
    """Connect, test credentials, then each stream the flows use; the detail when all
    went well, else an exception naming the problem."""
    from crm2erp.registry import create_connector

    with create_connector(spec.type, dict(spec.settings),
                          where=f"connection {spec.name!r} in {spec.source_file}") as conn:
        for stream, role in streams:   # before check(): a missing SQLite file stays missing
            conn.stream(stream)
            conn.stream_fields(stream, reflect=True)
            problem = role == "target" and getattr(conn, "unique_key_problem", None)
            if problem and (text := problem(conn.spec(stream))):
                raise ConfigError(text)
        conn.check()
    names = ", ".join(sorted({s for s, _ in streams}))
    return f"connected; streams ok: {names}" if names else "connected"


def check(ctx: typer.Context,
          as_json: bool = json_option()
          ) -> None:
    """Connect to every connection of the project (credentials, streams the flows use,
    target tables' keys) and print one row per connection; exit 2 if any fails."""
    cfg = settings(ctx)
    project = cfg.load_project()
    used: dict[str, list[tuple[str, str]]] = {n: [] for n in project.connections}
    for flow in project.flows.values():
        pairs = [(flow.source, "source"), (flow.target, "target")]
        if flow.write_back:
            pairs.append((flow.write_back, "write_back"))
        for endpoint, role in pairs:
            if (endpoint.stream, role) not in used.setdefault(endpoint.connection, []):
                used[endpoint.connection].append((endpoint.stream, role))
    rows = []
    for name, spec in sorted(project.connections.items()):
        try:
            detail, ok = _check_one(spec, used.get(name, [])), True
        except Exception as exc:  # noqa: BLE001 - every failure becomes a row, not a trace
            detail, ok = str(exc) or type(exc).__name__, False
        rows.append({"connection": name, "type": spec.type,
                     "status": "ok" if ok else "failed", "detail": detail})
    if as_json:
        print_json({"ok": all(r["status"] == "ok" for r in rows), "connections": rows})
    else:
        table = Table(title=literal(f"connections of {cfg.project}"), title_justify="left")
        for column in ("connection", "type", "status", "detail"):
            table.add_column(column, overflow="fold")
        for row in rows:
            style = "green" if row["status"] == "ok" else "red"
            table.add_row(literal(row["connection"]), literal(row["type"]),
                          literal(row["status"], style), literal(row["detail"]))
        console.print(table)
    failed = [r["connection"] for r in rows if r["status"] != "ok"]
    if failed:
        raise ConfigError(f"check failed for connection(s): {', '.join(failed)}")

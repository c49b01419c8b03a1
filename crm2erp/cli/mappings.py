"""``crm2erp mappings``: validate YAML files and explain a mapping field by field."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from crm2erp.cli.context import EXIT_USAGE, exit_with, settings
from crm2erp.cli.output import (
    console,
    err_console,
    json_logging,
    json_option,
    literal,
    print_json,
)
from crm2erp.errors import ConfigError, ConfigIssue

app = typer.Typer(no_args_is_help=True, help="Mappings and flows (YAML).")


def _issues_of_file(path: Path) -> list[ConfigIssue]:
    from crm2erp.mapping import load_flow, load_mapping
    from crm2erp.mapping.loader import validate_connections

    def load_connections(path: Path) -> None:
        issues = validate_connections(path)
        if issues:
            raise ConfigError(f"connections file {path}", issues)

    name = path.name
    if name.endswith(".flow.yaml"):
        loader = load_flow
    elif name.endswith(".map.yaml"):
        loader = load_mapping
    elif name in ("connections.yaml", "connections.yml"):
        loader = load_connections
    else:
        text = path.read_text(encoding="utf-8", errors="replace")
        heads = {line.split(":", 1)[0].strip() for line in text.splitlines()
                 if line and not line[0].isspace() and ":" in line}
        loader = (load_flow if "flow" in heads else
                  load_connections if "connections" in heads else load_mapping)
    try:
        loaded = loader(path)
    except ConfigError as exc:
        return exc.issues or [ConfigIssue(str(path), None, None, str(exc))]
    return _rule_issues([loaded]) if loader is load_flow else []


def _rule_issues(flows) -> list[ConfigIssue]:
    """The flows' quality rules built as the gate builds them (GX's objections)."""
    from crm2erp.quality.gx.rulecheck import rule_issues

    return rule_issues(flows)


@app.command("validate")
def validate(ctx: typer.Context,
             paths: list[Path] = typer.Argument(
                 None, help="YAML files or project folders (default: the project)."),
             offline: bool = typer.Option(
                 False, "--offline", help="Do not connect to databases to read their "
                 "tables' columns (checks what the files alone tell)."),
             as_json: bool = json_option()) -> None:
    """Check YAML files: every problem with its file:line:column; exit 2 if any.

    Quality rules are built with Great Expectations as a run's gate builds them, so a
    rule GX rejects (an unknown expect_ name, wrong arguments) is a problem here too.
    """
    from crm2erp.mapping import validate_project

    targets = paths or [settings(ctx).project]
    issues: list[ConfigIssue] = []
    notes: list[str] = []
    checked = 0
    for target in targets:
        if not target.exists():
            issues.append(ConfigIssue(str(target), None, None, "no such file or folder"))
        elif target.is_dir():
            flows: list = []
            issues.extend(validate_project(target, reflect=not offline, notes=notes,
                                           flows=flows))
            issues.extend(_rule_issues(flows))
            checked += sum(1 for _ in target.rglob("*.yaml"))
        else:
            issues.extend(_issues_of_file(target))
            checked += 1
    for note in notes:
        if json_logging():   # stderr holds JSON lines only
            logging.getLogger("crm2erp.cli").warning("note: %s", note)
        else:
            err_console.print(literal(f"note: {note}"), soft_wrap=True)
    if as_json:
        print_json({"ok": not issues, "files": checked, "notes": notes,
                    "problems": [{"file": i.file, "line": i.line, "column": i.column,
                                  "message": i.message} for i in issues]})
        exit_with(EXIT_USAGE if issues else 0)
    for issue in issues:
        console.print(literal(issue), soft_wrap=True)
    if issues:
        console.print(f"[red]{len(issues)} problem(s)[/] in {checked} file(s)")
        exit_with(EXIT_USAGE)
    console.print(f"[green]ok[/]: {checked} file(s) valid")


@app.command("explain")
def explain(ctx: typer.Context,
            flow_name: str = typer.Argument(..., metavar="FLOW"),
            record: str = typer.Option(..., "--record",
                                       help="A source record as JSON, or @file.json.")) -> None:
    """Trace one source record through FLOW's inbound and outbound mappings."""
    from crm2erp.engine.resolver import StoreResolver
    from crm2erp.mapping import compile_mapping
    from crm2erp.schemas import entity_model

    cfg = settings(ctx)
    project = cfg.load_project()
    if flow_name not in project.flows:
        raise ConfigError(f"unknown flow {flow_name!r} "
                          f"(flows: {', '.join(sorted(project.flows))})")
    flow = project.flows[flow_name]
    try:
        text = Path(record[1:]).read_text(encoding="utf-8") if record.startswith("@") else record
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--record {record}: cannot read the file ({exc})") from None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--record is not valid JSON: {exc}") from None
    if not isinstance(row, dict):
        raise ConfigError("--record must be a JSON object")
    inbound = compile_mapping(project.mapping(flow.source_mapping_path),
                              system=flow.source.connection)
    outbound = compile_mapping(project.mapping(flow.target_mapping_path),
                               system=flow.target.connection)
    store = cfg.open_store(create=False)
    try:
        resolver = StoreResolver(store)
        if not inbound.matches(row):
            console.print(literal(f"the record does not match the `where:` filter of "
                                  f"{flow.source_mapping_path.name}: the flow skips it"))
            return
        _trace_table(f"inbound: {flow.source_mapping_path.name}",
                     inbound.explain(row, resolver))
        try:
            canonical = entity_model(flow.entity).model_validate(
                {**inbound.apply(row, resolver), "id": "explain"})
        except Exception as exc:  # noqa: BLE001 - shown to the user, not raised
            console.print(Text.assemble((f"the canonical {flow.entity} is not valid:", "red"),
                                        " ", literal(exc)))
            return
        data = canonical.model_dump(mode="json")
        _trace_table(f"outbound: {flow.target_mapping_path.name}",
                     outbound.explain(data, resolver))
    finally:
        store.close()


def _trace_table(title: str, traces) -> None:
    table = Table(title=literal(title), title_justify="left", show_lines=False)
    for column in ("target field", "from", "raw", "steps", "result"):
        table.add_column(column, overflow="fold")
    for trace in traces:
        steps = " -> ".join(f"{name}: {value!r}" for name, value in trace.steps)
        if trace.skipped:
            result = literal("(skipped: `when` did not match)")
        elif trace.absent:
            result = literal("(not set: the record has no such field)")
        elif trace.error:
            result = literal(trace.error, "red")
        else:
            result = literal(repr(trace.value))
        table.add_row(literal(trace.target), literal(", ".join(trace.sources)),
                      literal(repr(trace.raw)), literal(steps), result)
    console.print(table)

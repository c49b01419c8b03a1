"""``crm2erp schemas export``: JSON Schemas of the canonical model and the YAML files."""

from __future__ import annotations

from pathlib import Path

import typer

from crm2erp.cli.output import console, literal

app = typer.Typer(no_args_is_help=True, help="Canonical schemas.")


@app.command("export")
def export(out: Path = typer.Option(Path("json-schemas"), "--out", "-o",
                                    help="Folder to write to.")):
    """Write the JSON Schemas of the canonical entities and of the mapping/flow files
    (for editors and validators) into a folder, by default ./json-schemas."""
    from crm2erp.mapping import export_json_schemas as export_yaml_schemas
    from crm2erp.schemas import export_json_schemas

    written = export_json_schemas(out) + export_yaml_schemas(out)
    for path in written:
        console.print(literal(f"wrote {path}"))

"""JSON Schemas of the three file kinds, for editors and CI.

The schemas are generated from the pydantic models and checked into
``crm2erp/mapping/json/`` so editors (YAML language server) can use them
without running Python; a test fails when the checked-in copies are stale.
Regenerate with ``python -m crm2erp.mapping.jsonschema``.
"""

from __future__ import annotations

__all__ = ["SCHEMA_DIR", "generate_json_schemas", "export_json_schemas"]

import json
import logging
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from crm2erp.mapping.models import ConnectionsFile, FlowSpec, MappingSpec

log = logging.getLogger(__name__)

SCHEMA_DIR = Path(__file__).parent / "json"

_MODELS: dict[str, tuple[type[BaseModel], str]] = {
    "mapping.schema.json": (MappingSpec, "crm2erp mapping file (*.map.yaml)"),
    "flow.schema.json": (FlowSpec, "crm2erp flow file (*.flow.yaml)"),
    "connections.schema.json": (ConnectionsFile, "crm2erp connections.yaml"),
}


def generate_json_schemas() -> dict[str, str]:
    """File name -> schema text (stable: sorted keys, trailing newline)."""
    out = {}
    for filename, (model, title) in _MODELS.items():
        schema: dict[str, Any] = model.model_json_schema(by_alias=True, mode="validation")
        schema["title"] = title
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[filename] = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return out


def export_json_schemas(out_dir: str | os.PathLike[str] = SCHEMA_DIR) -> list[Path]:
    """Write the schemas into ``out_dir``; returns the paths written."""
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, text in generate_json_schemas().items():
        path = target / filename
        path.write_text(text, encoding="utf-8")
        written.append(path)
        log.info("wrote %s", path)
    return written


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    export_json_schemas()

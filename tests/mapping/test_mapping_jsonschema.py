"""The checked-in JSON Schemas must match the pydantic models."""

from __future__ import annotations

import json

from crm2erp.mapping.jsonschema import SCHEMA_DIR, export_json_schemas, generate_json_schemas


def test_checked_in_schemas_are_fresh():
    fresh = generate_json_schemas()
    assert sorted(fresh) == ["connections.schema.json", "flow.schema.json", "mapping.schema.json"]
    for name, text in fresh.items():
        stored = (SCHEMA_DIR / name).read_text(encoding="utf-8")
        assert stored == text, (
            f"{name} is stale: run `python -m crm2erp.mapping.jsonschema` and commit the result")


def test_export_writes_valid_json(tmp_path):
    paths = export_json_schemas(tmp_path)
    assert len(paths) == 3
    mapping = json.loads((tmp_path / "mapping.schema.json").read_text())
    assert mapping["additionalProperties"] is False
    assert set(mapping["required"]) == {"mapping", "direction", "entity", "fields"}
    field_spec = mapping["$defs"]["FieldSpec"]["properties"]
    assert "from" in field_spec and "from_" not in field_spec

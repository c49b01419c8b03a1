"""Shared helpers for the mapping tests: write files, build small mappings."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from crm2erp.mapping import CompiledMapping, MappingSpec, compile_mapping


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def mapping(fields: dict[str, Any], *, direction: str = "inbound", where: Any = None,
            system: str = "crm") -> CompiledMapping:
    data: dict[str, Any] = {"mapping": "t", "direction": direction, "entity": "Account",
                            "fields": fields}
    if where is not None:
        data["where"] = where
    return compile_mapping(MappingSpec.model_validate(data), system=system)


def one(transforms: list[Any], value: Any, **extra: Any) -> Any:
    """Run ``transforms`` on ``value`` (as source field ``v``) and return the result."""
    record = {"v": value, **extra}
    return mapping({"out": {"from": "v", "transforms": transforms}}).apply(record)["out"]

"""Connectors and their registry (entry point group ``crm2erp.connectors``).

A third-party package adds a connector by declaring, in its own metadata::

    [options.entry_points]
    crm2erp.connectors =
        mycrm = mypackage.connector:MyCrmConnector
"""

from __future__ import annotations

__all__ = [
    "Batch",
    "Connector",
    "Cursor",
    "DeleteMode",
    "Row",
    "StreamInfo",
    "WriteAction",
    "WriteResult",
    "available",
    "load_connector_class",
    "create_connector",
]

from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from crm2erp.connectors.base import (
    Batch,
    Connector,
    Cursor,
    DeleteMode,
    Row,
    StreamInfo,
    WriteAction,
    WriteResult,
)
from crm2erp.errors import ConfigError

GROUP = "crm2erp.connectors"


def available() -> dict[str, str]:
    """Connector type name -> ``module:Class`` for every registered connector."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def load_connector_class(type_name: str) -> type[Connector]:
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == type_name]
    if not matches:
        known = ", ".join(sorted(available())) or "none installed"
        raise ConfigError(
            f"unknown connector type {type_name!r} (known: {known}); "
            "is the package that provides it installed?"
        )
    return matches[0].load()


def create_connector(type_name: str, settings: dict[str, Any], *,
                     where: str = "connection") -> Connector:
    """Build a connector from its type name and raw settings, validating them."""
    cls = load_connector_class(type_name)
    try:
        config = cls.Config.model_validate(settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{where} (type {type_name}): {problems}") from None
    return cls(config)

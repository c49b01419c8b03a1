"""Connectors of a run, created on first use from the project's connections."""

from __future__ import annotations

__all__ = ["ConnectionPool"]

from crm2erp.contract import Connector
from crm2erp.errors import ConfigError
from crm2erp.registry import create_connector


class ConnectionPool:
    """Builds each named connection's connector once and closes them all at the end."""

    def __init__(self, specs):
        self.specs = specs
        self._open: dict[str, Connector] = {}

    def get(self, name: str) -> Connector:
        if name not in self._open:
            spec = self.specs.get(name)
            if spec is None:
                known = ", ".join(sorted(self.specs)) or "none"
                raise ConfigError(f"unknown connection {name!r} (connections: {known})")
            where = f"connection {name!r} in {spec.source_file}"
            self._open[name] = create_connector(spec.type, dict(spec.settings), where=where)
        return self._open[name]

    def close(self) -> None:
        for connector in self._open.values():
            connector.close()
        self._open.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

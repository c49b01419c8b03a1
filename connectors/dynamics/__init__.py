"""The Microsoft Dynamics 365 / Dataverse connector (entry point ``dynamics``).

Reads accounts, contacts, opportunities, opportunity products and products
(or any table configured as a stream) through the Dataverse Web API (OData
v4) in ``modifiedon`` order, and upserts by alternate key. See
``docs/connectors/dynamics.md``; the emulator is
:mod:`crm2erp.connectors.dynamics.emulator`.
"""

from __future__ import annotations

__all__ = ["DynamicsConnector", "DynamicsConfig", "DynamicsStreamConfig"]

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from crm2erp.connectors.base import Batch, Connector, Cursor, Row, StreamInfo, WriteResult
from crm2erp.connectors.dynamics.api import build_client
from crm2erp.connectors.dynamics.config import DynamicsConfig, DynamicsStreamConfig
from crm2erp.connectors.dynamics.source import DynamicsReader
from crm2erp.connectors.dynamics.target import DynamicsWriter
from crm2erp.errors import ConfigError


class DynamicsConnector(Connector):
    """Dataverse as a source and a target; ``client`` exposes request stats."""

    name = "dynamics"
    Config = DynamicsConfig

    def __init__(self, config: DynamicsConfig, **client_options: Any):
        super().__init__(config)
        self.config: DynamicsConfig = config
        self.client = build_client(config, **client_options)
        self.reader = DynamicsReader(self.client, config)
        self.writer = DynamicsWriter(self.client, config, self.reader)

    def check(self) -> None:
        """Fetch a token, call WhoAmI, and select one row of every stream with its columns."""
        api = self.config.api_path
        self.client.get_json(f"{api}/WhoAmI")
        problems = []
        for name, stream in self.config.streams.items():
            resp = self.client.request("GET", f"{api}/{stream.entity_set}",
                                       params={"$select": ",".join(stream.fields), "$top": "1"})
            if resp.status_code >= 400:
                problems.append(f"stream {name!r}: HTTP {resp.status_code} {resp.text[:200]}")
        if problems:
            raise ConfigError("Dynamics connection: " + "; ".join(problems))

    def _stream_config(self, name: str) -> DynamicsStreamConfig:
        self.stream(name)  # raises ConfigError naming the known streams
        return self.config.streams[name]

    def streams(self) -> Sequence[StreamInfo]:
        return [StreamInfo(name=name, key=(s.key,), cursor_field=s.cursor_field,
                           children=tuple(s.children), writable=bool(s.alternate_key))
                for name, s in self.config.streams.items()]

    def read(self, stream: str, since: Cursor | None = None, *,
             batch_size: int = 500) -> Iterator[Batch]:
        return self.reader.read(self._stream_config(stream), since, batch_size)

    def upsert(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        return self.writer.upsert(stream, self._stream_config(stream), rows)

    def lookup(self, stream: str, keys: Sequence[str]) -> Mapping[str, Row]:
        return self.writer.lookup(stream, self._stream_config(stream), keys)

    def close(self) -> None:
        self.client.close()


"""The connector contract, for connector code: the names of :mod:`crm2erp.contract`.

The contract itself lives in the core (:mod:`crm2erp.contract`) so the engine,
store and mapping never import this folder; connectors keep importing it from
here. :class:`DelegatingConnector` is a helper for connectors built from a
reader and a writer.
"""

from __future__ import annotations

__all__ = [
    "Row",
    "Cursor",
    "StreamInfo",
    "Batch",
    "Rejected",
    "WriteAction",
    "WriteResult",
    "DeleteMode",
    "ConnectorConfig",
    "TimeZoneName",
    "Connector",
    "DelegatingConnector",
]

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from crm2erp.contract import (
    Batch,
    Connector,
    ConnectorConfig,
    Cursor,
    DeleteMode,
    Rejected,
    Row,
    StreamInfo,
    TimeZoneName,
    WriteAction,
    WriteResult,
)


class DelegatingConnector(Connector):
    """A connector configured with ``config.streams`` (stream name -> stream config)
    that hands each call, with the stream's config, to ``reader`` and ``writer``.

    Subclasses build ``client``, ``reader`` and ``writer`` in ``__init__`` and
    implement :meth:`streams`; they override what their API does differently
    (a read-only stream refusing ``upsert``, another object to close).
    """

    config: Any
    client: Any
    reader: Any
    writer: Any

    def _stream_config(self, name: str) -> Any:
        self.stream(name)  # raises ConfigError naming the known streams
        return self.config.streams[name]

    def read(self, stream: str, since: Cursor | None = None, *,
             batch_size: int = 500) -> Iterator[Batch]:
        return self.reader.read(self._stream_config(stream), since, batch_size)

    def upsert(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        return self.writer.upsert(stream, self._stream_config(stream), rows)

    def lookup(self, stream: str, keys: Sequence[str]) -> Mapping[str, Row]:
        return self.writer.lookup(stream, self._stream_config(stream), keys)

    def delete(self, stream: str, keys: Sequence[str],
               mode: DeleteMode) -> Sequence[WriteResult]:
        """Delete or archive by target id (the modes a stream's :class:`StreamInfo` lists)."""
        return self.writer.delete(stream, self._stream_config(stream), keys, DeleteMode(mode))

    def close(self) -> None:
        self.client.close()

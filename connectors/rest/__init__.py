"""The declarative REST connector (entry point ``rest``): a connector in YAML.

For a CRM or ERP that has no built-in connector but a JSON REST API: the
connection in ``connections.yaml`` names the base URL, the auth (any of the
HTTP toolkit's types), the streams (path, record selector, key, paginator,
cursor field and parameter, renames, soft-delete marker) and, per stream, an
optional write endpoint. No Python is needed. See ``docs/connectors/rest.md``
and :mod:`crm2erp.emulators.rest.app` (a Pipedrive-like demo API).
"""

from __future__ import annotations

__all__ = ["RestConnector", "RestConfig", "RestStreamConfig", "build_error_mapper"]

from collections.abc import Iterator
from typing import Any

from crm2erp.connectors.base import Batch, Cursor, StreamInfo
from crm2erp.connectors.rest.config import RestConfig, RestStreamConfig
from crm2erp.connectors.rest.source import RestReader
from crm2erp.connectors.rest.target import RestWriter
from crm2erp.connectors.toolkit.connector import GuardedApiConnector
from crm2erp.connectors.toolkit.errors import check_streams
from crm2erp.connectors.toolkit.listing import build_paginator
from crm2erp.connectors.toolkit.rules import build_error_mapper
from crm2erp.http import HttpClient, build_auth


def build_client(config: RestConfig, **client_options: Any) -> HttpClient:
    """The client of the connection: its auth, transport settings and ``errors`` rules."""
    return HttpClient(config.http_settings(), base_url=config.base_url,
                      auth=build_auth(config.auth),
                      error_mapper=build_error_mapper(config.name, config.errors),
                      name=config.name, **client_options)


class RestConnector(GuardedApiConnector):
    """Any JSON REST API described in YAML; ``client`` exposes the request stats."""

    name = "rest"
    system = "REST"
    read_only = "has no write endpoint"
    Config = RestConfig
    build_client = staticmethod(build_client)
    Reader = RestReader
    Writer = RestWriter

    def check(self) -> None:
        """The checks of every stream, named by the API's own name (``config.name``)."""
        check_streams(self.config.name, self.config.streams, self.stream_problem)

    def stream_problem(self, stream: RestStreamConfig) -> None:
        """Fetch the stream's first page (auth, path and record selector)."""
        paginator = build_paginator(stream.paginator, stream.records, f"GET {stream.path}")
        paginator.max_pages = 1
        for page in paginator.pages(self.client, stream.path, dict(stream.params),
                                    headers=self.config.headers):
            paginator.records(page)   # a ConfigError naming the path and the keys

    def stream_info(self, name: str, stream: RestStreamConfig) -> StreamInfo:
        return StreamInfo(name=name, key=(stream.key,),
                          cursor_field=stream.cursor.field if stream.cursor else None,
                          writable=stream.write is not None,
                          delete_modes=tuple(m for m in ("delete", "archive")
                                             if stream.write and getattr(stream.write, m)))

    def read(self, stream: str, since: Cursor | None = None, *,
             batch_size: int = 500) -> Iterator[Batch]:
        return self.reader.read(stream, self._stream_config(stream), since, batch_size)

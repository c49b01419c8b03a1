"""The Microsoft Dynamics 365 / Dataverse connector (entry point ``dynamics``).

Reads accounts, contacts, opportunities, opportunity products and products
(or any table configured as a stream) through the Dataverse Web API (OData
v4) in ``modifiedon`` order with configured children embedded (an
opportunity's products), upserts by alternate key and updates rows by id
(write-back). See
``docs/connectors/dynamics.md``; the emulator is
:mod:`crm2erp.emulators.dynamics.app`.
"""

from __future__ import annotations

__all__ = ["DynamicsConnector", "DynamicsConfig", "DynamicsStreamConfig"]

from crm2erp.connectors.base import StreamInfo
from crm2erp.connectors.dynamics.api import build_client
from crm2erp.connectors.dynamics.config import DynamicsConfig, DynamicsStreamConfig
from crm2erp.connectors.dynamics.source import DynamicsReader
from crm2erp.connectors.dynamics.target import DynamicsWriter
from crm2erp.connectors.toolkit.connector import ApiConnector
from crm2erp.connectors.toolkit.targets import WriteBackConnector


class DynamicsConnector(ApiConnector, WriteBackConnector):
    """Dataverse as a source and a target; ``client`` exposes request stats."""

    name = "dynamics"
    system = "Dynamics"
    Config = DynamicsConfig
    build_client = staticmethod(build_client)
    Reader = DynamicsReader
    Writer = DynamicsWriter

    def check_access(self) -> None:
        """Fetch a token and call WhoAmI."""
        self.client.get_json(f"{self.config.api_path}/WhoAmI")

    def stream_problem(self, stream: DynamicsStreamConfig) -> str | None:
        """Select one row of the stream with its columns."""
        resp = self.client.request("GET", f"{self.config.api_path}/{stream.entity_set}",
                                   params={"$select": ",".join(stream.fields), "$top": "1"})
        return f"HTTP {resp.status_code} {resp.text[:200]}" if resp.status_code >= 400 else None

    def stream_info(self, name: str, stream: DynamicsStreamConfig) -> StreamInfo:
        return StreamInfo(name=name, key=(stream.key,), cursor_field=stream.cursor_field,
                          children=tuple(stream.children), writable=bool(stream.alternate_key),
                          delete_modes=("delete", "archive"))

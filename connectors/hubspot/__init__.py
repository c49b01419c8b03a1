"""The HubSpot CRM connector (entry point ``hubspot``).

Reads companies, contacts, deals, line items and products (or any CRM object
type configured as a stream) through the CRM v3 search API in modification
order, with associations from the v4 associations API and configured children
(a deal's line items) embedded, upserts through ``batch/upsert`` on a unique
property and updates existing records by id (``batch/update``, write-back).
See ``docs/connectors/hubspot.md``; the emulator is :mod:`crm2erp.emulators.hubspot.app`.
"""

from __future__ import annotations

__all__ = ["HubSpotConnector", "HubSpotConfig", "HubSpotStreamConfig"]

from collections.abc import Sequence

from crm2erp.connectors.base import Row, StreamInfo, WriteResult
from crm2erp.connectors.hubspot.api import build_client
from crm2erp.connectors.hubspot.config import RECORD_FIELDS, HubSpotConfig, HubSpotStreamConfig
from crm2erp.connectors.hubspot.source import HubSpotReader
from crm2erp.connectors.hubspot.target import HubSpotWriter
from crm2erp.connectors.toolkit.connector import ApiConnector
from crm2erp.connectors.toolkit.errors import missing_names
from crm2erp.connectors.toolkit.targets import WriteBackConnector


class HubSpotConnector(ApiConnector, WriteBackConnector):
    """HubSpot as a source and a target; ``client`` exposes request stats."""

    name = "hubspot"
    system = "HubSpot"
    Config = HubSpotConfig
    build_client = staticmethod(build_client)
    Reader = HubSpotReader
    Writer = HubSpotWriter
    check_hint = " - fix the property internal names or create the properties in HubSpot"

    @property
    def rate_limits(self) -> dict[str, int]:
        """The last ``X-HubSpot-RateLimit-*`` values seen (daily, daily_remaining, ...)."""
        return self.reader.rate_limits

    def stream_problem(self, stream: HubSpotStreamConfig) -> str | None:
        """The stream's properties against the properties API (the token is checked on the
        way): missing ones, an id_property without unique values."""
        known = {p["name"]: p for p in
                 self.reader.listed(f"/crm/v3/properties/{stream.object_type}")}
        missing = missing_names(stream.object_type, "properties", stream.properties, known)
        if missing or not stream.id_property or known[stream.id_property].get("hasUniqueValue") \
                or (stream.object_type == "contacts" and stream.id_property == "email"):
            return missing
        return (f"id_property {stream.id_property!r} does not have unique values; "
                "create it with hasUniqueValue: true")

    def stream_info(self, name: str, stream: HubSpotStreamConfig) -> StreamInfo:
        return StreamInfo(name=name, key=("id",), cursor_field=stream.cursor_property,
                          children=tuple(stream.children), writable=bool(stream.id_property),
                          fields=(*RECORD_FIELDS, *stream.properties,
                                  *(["associations"] if stream.associations else []),
                                  *stream.children),
                          delete_modes=("archive", "delete"))

    def upsert(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        if not rows:
            return []
        return self.writer.upsert(stream, self._stream_config(stream), rows)

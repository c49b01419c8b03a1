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
from crm2erp.connectors.hubspot.config import HubSpotConfig, HubSpotStreamConfig
from crm2erp.connectors.hubspot.source import HubSpotReader
from crm2erp.connectors.hubspot.target import HubSpotWriter
from crm2erp.connectors.toolkit.connector import ApiConnector
from crm2erp.connectors.toolkit.paging import paged_records
from crm2erp.connectors.toolkit.targets import WriteBackConnector
from crm2erp.http import CursorPaginator


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
        known = {p["name"]: p for p in paged_records(
            CursorPaginator("paging.next.after", "after", "results"), self.client,
            f"/crm/v3/properties/{stream.object_type}")}
        missing = sorted(p for p in stream.properties if p not in known)
        if missing:
            return f"{stream.object_type} has no properties {', '.join(missing)}"
        if stream.id_property and not known[stream.id_property].get("hasUniqueValue") \
                and not (stream.object_type == "contacts" and stream.id_property == "email"):
            return (f"id_property {stream.id_property!r} does not have unique values; "
                    "create it with hasUniqueValue: true")
        return None

    def stream_info(self, name: str, stream: HubSpotStreamConfig) -> StreamInfo:
        return StreamInfo(name=name, key=("id",), cursor_field=stream.cursor_property,
                          children=tuple(stream.children), writable=bool(stream.id_property),
                          fields=("id", "createdAt", "updatedAt", "archived", *stream.properties,
                                  *(["associations"] if stream.associations else []),
                                  *stream.children),
                          delete_modes=("archive", "delete"))

    def upsert(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        if not rows:
            return []
        return self.writer.upsert(stream, self._stream_config(stream), rows)

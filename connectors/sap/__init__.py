"""The SAP S/4HANA connector (entry point ``sap``), over the OData v2 APIs.

Streams: business partners with their customer role, addresses and customer
data (``API_BUSINESS_PARTNER``), sales orders with items
(``API_SALES_ORDER_SRV``), billing documents (``API_BILLING_DOCUMENT_SRV``,
read-only, for the invoice return flow) and planned independent requirements
(``API_PLND_INDEP_RQMT_SRV``, for the forecast flow). See
``docs/connectors/sap.md``; the emulator is :mod:`crm2erp.emulators.sap.app`.
"""

from __future__ import annotations

__all__ = ["SapConnector", "SapConfig", "SapStreamConfig"]

from collections.abc import Sequence
from typing import Any

from crm2erp.connectors.base import (
    DelegatingConnector,
    DeleteMode,
    Row,
    StreamInfo,
    WriteResult,
)
from crm2erp.connectors.sap.client import SapClient
from crm2erp.connectors.sap.config import SapConfig, SapStreamConfig
from crm2erp.connectors.sap.source import SapReader
from crm2erp.connectors.sap.target import SapWriter
from crm2erp.errors import ConfigError


class SapConnector(DelegatingConnector):
    """SAP S/4HANA as a target (and a source for the return flows).

    ``client`` is the reading HTTP client (its ``stats`` count requests and
    retry waits); ``sap`` the wrapper that also holds the CSRF session.
    """

    name = "sap"
    Config = SapConfig

    def __init__(self, config: SapConfig, **client_options: Any):
        super().__init__(config)
        self.config: SapConfig = config
        self.sap = SapClient(config, **client_options)
        self.client = self.sap.http
        self.reader = SapReader(self.sap)
        self.writer = SapWriter(self.sap)

    def check(self) -> None:
        """Fetch a CSRF token and the ``$metadata`` of every service the streams use."""
        services = list(dict.fromkeys(s.service for s in self.config.streams.values()))
        problems = []
        for service in services:
            try:
                self.sap.fetch_token(service)
                resp = self.client.request(
                    "GET", f"{self.config.service_path(service)}/$metadata",
                    params=self.sap.params(), expect_json=False)
            except ConfigError as exc:   # a service the system does not have: check the rest
                problems.append(f"{service}: {exc}")
                continue
            if resp.status_code >= 400:
                problems.append(f"{service} (HTTP {resp.status_code})")
                continue
            for name, stream in self.config.streams.items():
                if stream.service == service and \
                        f'Name="{stream.entity_set}"' not in resp.text:
                    problems.append(f"stream {name!r}: {service} has no entity set "
                                    f"{stream.entity_set}")
        if problems:
            raise ConfigError("SAP connection: " + "; ".join(problems) + " - check the "
                              "service names and that the communication arrangement "
                              "grants them (transaction /IWFND/MAINT_SERVICE on-premise)")

    def streams(self) -> Sequence[StreamInfo]:
        return [StreamInfo(name=name, key=tuple(s.key), cursor_field=s.cursor_field,
                           children=tuple(s.children), writable=s.writable,
                           delete_modes=tuple(s.deletes) if s.writable else ())
                for name, s in self.config.streams.items()]

    def upsert(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        config = self._stream_config(stream)
        if not config.writable:
            raise NotImplementedError(f"SAP stream {stream!r} is read-only (no external_id)")
        return self.writer.upsert(stream, config, rows)

    def delete(self, stream: str, keys: Sequence[str],
               mode: DeleteMode) -> Sequence[WriteResult]:
        config = self._stream_config(stream)
        if not config.writable:
            raise NotImplementedError(f"SAP stream {stream!r} is read-only (no external_id)")
        return self.writer.delete(stream, config, keys, mode)

    @property
    def warnings(self) -> list[str]:
        """The warnings SAP sent in ``sap-message`` headers during this connection."""
        return list(self.sap.warnings)

    def take_warnings(self) -> list[str]:
        return self.sap.take_warnings()

    def close(self) -> None:
        self.sap.close()

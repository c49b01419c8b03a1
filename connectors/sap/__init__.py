"""The SAP S/4HANA connector (entry point ``sap``), over the OData v2 APIs.

Streams: business partners with their customer role, addresses and customer
data (``API_BUSINESS_PARTNER``), sales orders with items
(``API_SALES_ORDER_SRV``), billing documents (``API_BILLING_DOCUMENT_SRV``,
read-only, for the invoice return flow) and planned independent requirements
(``API_PLND_INDEP_RQMT_SRV``, for the forecast flow). See
``docs/connectors/sap.md``; the emulator is :mod:`crm2erp.emulators.sap.app`.
"""

from __future__ import annotations

__all__ = ["SapConnector", "SapConfig", "SapStreamConfig", "batch"]

from collections.abc import Sequence
from typing import Any

from crm2erp.connectors.base import DeleteMode, StreamInfo, WriteResult
from crm2erp.connectors.sap.client import SapClient
from crm2erp.connectors.sap.config import SapConfig, SapStreamConfig
from crm2erp.connectors.sap.source import SapReader
from crm2erp.connectors.sap.target import SapWriter
from crm2erp.connectors.toolkit import odata_batch as batch  # the $batch bodies SAP reads
from crm2erp.connectors.toolkit.connector import GuardedApiConnector
from crm2erp.errors import ConfigError


class SapConnector(GuardedApiConnector):
    """SAP S/4HANA as a target (and a source for the return flows).

    ``client`` (also ``sap``) is the HTTP client with SAP's specifics: its ``stats``
    count requests and retry waits, it holds the CSRF session.
    """

    name = "sap"
    system = "SAP"
    read_only = "is read-only (no external_id)"
    Config = SapConfig
    check_hint = (" - check the service names and that the communication arrangement grants "
                  "them (transaction /IWFND/MAINT_SERVICE on-premise)")

    def connect(self, **client_options: Any) -> None:
        self.sap = self.client = SapClient(self.config, **client_options)
        self.reader = SapReader(self.sap)
        self.writer = SapWriter(self.sap)

    def check_access(self) -> None:
        """Nothing before the streams (a CSRF token is fetched per service); the
        ``$metadata`` documents of an earlier check are forgotten."""
        self._checked: dict[str, str | ConfigError] = {}   # per service: document, or why not

    def stream_problem(self, stream: SapStreamConfig) -> str | None:
        """The stream's service and entity set against the service's ``$metadata`` (read
        once per service and check)."""
        if stream.service not in self._checked:
            self._checked[stream.service] = self._metadata(stream.service)
        found = self._checked[stream.service]
        if isinstance(found, ConfigError):
            return f"{stream.service}: {found}"
        if f'Name="{stream.entity_set}"' not in found:
            return f"{stream.service} has no entity set {stream.entity_set}"
        return None

    def _metadata(self, service: str) -> str | ConfigError:
        """The ``$metadata`` document of ``service``, or why it cannot be read (a service
        the system does not have)."""
        try:
            self.sap.fetch_token(service)
            resp = self.client.request("GET", f"{self.config.service_path(service)}/$metadata",
                                       params=self.sap.params(), expect_json=False)
        except ConfigError as exc:
            return exc
        return resp.text if resp.status_code < 400 else ConfigError(f"HTTP {resp.status_code}")

    def stream_info(self, name: str, stream: SapStreamConfig) -> StreamInfo:
        return StreamInfo(name=name, key=tuple(stream.key), cursor_field=stream.cursor_field,
                          children=tuple(stream.children), writable=stream.writable,
                          delete_modes=tuple(stream.deletes) if stream.writable else ())

    def delete(self, stream: str, keys: Sequence[str],
               mode: DeleteMode) -> Sequence[WriteResult]:
        return self.writer.delete(stream, self.writable_config(stream), keys, mode)

    @property
    def warnings(self) -> list[str]:
        """The warnings SAP sent in ``sap-message`` headers during this connection."""
        return list(self.sap.warnings)

    def take_warnings(self) -> list[str]:
        return self.sap.take_warnings()

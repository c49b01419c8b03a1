"""The ERPNext connector (entry point ``erpnext``), over the Frappe REST API.

Streams: customers, sales orders (submitted on create, with their ``items``)
and sales invoices (read-only, for the invoice return flow). See
``docs/connectors/erpnext.md``; the emulator is
:mod:`crm2erp.emulators.erpnext.app`.
"""

from __future__ import annotations

__all__ = ["ErpNextConnector", "ErpNextConfig", "ErpNextStreamConfig"]

from collections.abc import Sequence
from typing import Any

from crm2erp.connectors.base import DelegatingConnector, Row, StreamInfo, WriteResult
from crm2erp.connectors.erpnext.api import build_client
from crm2erp.connectors.erpnext.config import ErpNextConfig, ErpNextStreamConfig
from crm2erp.connectors.erpnext.source import ErpNextReader, resource
from crm2erp.connectors.erpnext.target import ErpNextWriter
from crm2erp.connectors.toolkit.errors import check_streams
from crm2erp.errors import ConfigError


class ErpNextConnector(DelegatingConnector):
    """ERPNext as a target (and a source for the invoice return flow)."""

    name = "erpnext"
    Config = ErpNextConfig

    def __init__(self, config: ErpNextConfig, **client_options: Any):
        super().__init__(config)
        self.config: ErpNextConfig = config
        self.client = build_client(config, **client_options)
        self.reader = ErpNextReader(self.client, config)
        self.writer = ErpNextWriter(self.reader)

    def check(self) -> None:
        """Ask who we are, then read one record of every stream's DocType (and of
        Address and Contact for streams that write them)."""
        self.client.get_json("/api/method/frappe.auth.get_logged_user")

        def problem_of(stream: ErpNextStreamConfig) -> str | None:
            problems = []
            linked = [*(["Address"] if stream.addresses else []),
                      *(["Contact"] if stream.contact else [])]
            for doctype in (stream.doctype, *linked):
                try:
                    resp = self.client.request("GET", resource(doctype),
                                               params={"limit_page_length": 1})
                except ConfigError as exc:   # an unknown DocType: go on checking the others
                    problems.append(str(exc))
                    continue
                if resp.status_code >= 400:
                    problems.append(f"DocType {doctype!r} (HTTP {resp.status_code})")
            return "; ".join(problems) or None

        check_streams("ERPNext", self.config.streams, problem_of, " - check the DocType "
                      "names and the roles of the API user")

    def streams(self) -> Sequence[StreamInfo]:
        return [StreamInfo(name=name, key=("name",), cursor_field=s.cursor_field,
                           children=tuple(s.children), writable=bool(s.external_id_field),
                           delete_modes=(() if not s.external_id_field else
                                         ("delete", "archive") if s.archive_field
                                         else ("delete",)))
                for name, s in self.config.streams.items()]

    def upsert(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        return self.writer.upsert(stream, self._writable(stream), rows)

    def update(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        """Like upsert, but a contact or address field the rows leave out stays as it is."""
        return self.writer.upsert(stream, self._writable(stream), rows, partial=True)

    def _writable(self, stream: str) -> ErpNextStreamConfig:
        config = self._stream_config(stream)
        if not config.external_id_field:
            raise NotImplementedError(f"ERPNext stream {stream!r} is read-only "
                                      "(no external_id_field)")
        return config

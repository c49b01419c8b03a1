"""The ERPNext connector (entry point ``erpnext``), over the Frappe REST API.

Streams: customers, sales orders (submitted on create, with their ``items``)
and sales invoices (read-only, for the invoice return flow). See
``docs/connectors/erpnext.md``; the emulator is
:mod:`crm2erp.emulators.erpnext.app`.
"""

from __future__ import annotations

__all__ = ["ErpNextConnector", "ErpNextConfig", "ErpNextStreamConfig"]

from crm2erp.connectors.base import StreamInfo
from crm2erp.connectors.erpnext.api import build_client
from crm2erp.connectors.erpnext.config import ErpNextConfig, ErpNextStreamConfig
from crm2erp.connectors.erpnext.source import ErpNextReader, resource
from crm2erp.connectors.erpnext.target import ErpNextWriter
from crm2erp.connectors.toolkit.connector import GuardedWriteBackConnector
from crm2erp.connectors.toolkit.errors import problems_of


class ErpNextConnector(GuardedWriteBackConnector):
    """ERPNext as a target (and a source for the invoice return flow)."""

    name = "erpnext"
    system = "ERPNext"
    read_only = "is read-only (no external_id_field)"
    Config = ErpNextConfig
    build_client = staticmethod(build_client)
    Reader = ErpNextReader
    Writer = ErpNextWriter
    check_hint = " - check the DocType names and the roles of the API user"

    def check_access(self) -> None:
        """Ask who we are."""
        self.client.get_json("/api/method/frappe.auth.get_logged_user")

    def stream_problem(self, stream: ErpNextStreamConfig) -> str | None:
        """Read one record of the stream's DocType (and of Address and Contact for a
        stream that writes them)."""
        linked = [*(["Address"] if stream.addresses else []),
                  *(["Contact"] if stream.contact else [])]
        return problems_of((stream.doctype, *linked), self._doctype_problem)

    def _doctype_problem(self, doctype: str) -> str | None:   # a ConfigError: unknown DocType
        resp = self.client.request("GET", resource(doctype), params={"limit_page_length": 1})
        return f"DocType {doctype!r} (HTTP {resp.status_code})" if resp.status_code >= 400 \
            else None

    def stream_info(self, name: str, stream: ErpNextStreamConfig) -> StreamInfo:
        return StreamInfo(name=name, key=("name",), cursor_field=stream.cursor_field,
                          children=tuple(stream.children),
                          writable=bool(stream.external_id_field),
                          delete_modes=(() if not stream.external_id_field else
                                        ("delete", "archive") if stream.archive_field
                                        else ("delete",)))

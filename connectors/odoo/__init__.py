"""The Odoo connector (entry point ``odoo``), CRM side and ERP side.

Talks to Odoo's external JSON-RPC API (``/jsonrpc``, ``execute_kw``), which
every Odoo edition has (Community, Enterprise, Odoo Online, Odoo.sh). Reads
``res.partner``, ``crm.lead``, ``product.product``, ``sale.order`` and
``account.move`` (or any model configured as a stream) incrementally by
``write_date``; upserts by a reference field. See ``docs/connectors/odoo.md``;
the emulator is :mod:`crm2erp.emulators.odoo.app`.
"""

from __future__ import annotations

__all__ = ["OdooConnector", "OdooConfig", "OdooStreamConfig"]

from collections.abc import Mapping, Sequence
from typing import Any

from crm2erp.connectors.base import Row, StreamInfo
from crm2erp.connectors.odoo.config import ChildConfig, OdooConfig, OdooStreamConfig
from crm2erp.connectors.odoo.rpc import OdooRpc
from crm2erp.connectors.odoo.source import OdooReader
from crm2erp.connectors.odoo.target import OdooWriter
from crm2erp.connectors.toolkit.connector import ApiConnector
from crm2erp.connectors.toolkit.errors import problems_of
from crm2erp.connectors.toolkit.targets import WriteBackConnector


class OdooConnector(ApiConnector, WriteBackConnector):
    """Odoo as a source and a target; ``client`` exposes the request stats (closing it
    closes the single-attempt client too: they share the session)."""

    name = "odoo"
    system = "Odoo"
    Config = OdooConfig
    check_hint = (" - fix the field names in the stream config or install the module that "
                  "adds them (crm, sale, account)")

    def connect(self, **client_options: Any) -> None:
        self.rpc = OdooRpc(self.config, **client_options)
        self.client = self.rpc.client
        self.reader = OdooReader(self.rpc, self.config)
        self.writer = OdooWriter(self.rpc, self.config)

    def check_access(self) -> None:
        """Log in (the streams' models and fields are then checked for this user)."""
        self.rpc.call("common", "version")
        self.rpc.authenticate()

    def stream_problem(self, stream: OdooStreamConfig) -> str | None:
        """What the stream's model or its children's models lack (every model checked)."""
        return problems_of([stream, *stream.children.values()], self._model_problem)

    def _model_problem(self, part: ChildConfig) -> str | None:
        """The fields the model of ``part`` lacks (a ConfigError when the model is unknown)."""
        missing = sorted(set(part.fields) - set(self.rpc.field_types(part.model)))
        return f"{part.model} has no field(s) {', '.join(missing)}" if missing else None

    def stream_info(self, name: str, stream: OdooStreamConfig) -> StreamInfo:
        return StreamInfo(name=name, key=("id",), cursor_field=stream.cursor_field,
                          children=tuple(stream.children), writable=bool(stream.key_field),
                          delete_modes=(() if not stream.key_field else ("delete", "archive")
                                        if "active" in stream.fields else ("delete",)))

    def lookup(self, stream: str, keys: Sequence[str]) -> Mapping[str, Row]:
        return self.reader.lookup(self._stream_config(stream), keys)

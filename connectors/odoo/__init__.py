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
from crm2erp.connectors.odoo.config import OdooConfig, OdooStreamConfig
from crm2erp.connectors.odoo.rpc import OdooRpc
from crm2erp.connectors.odoo.source import OdooReader
from crm2erp.connectors.odoo.target import OdooWriter
from crm2erp.connectors.toolkit.errors import check_streams
from crm2erp.connectors.toolkit.targets import WriteBackConnector
from crm2erp.errors import ConfigError


class OdooConnector(WriteBackConnector):
    """Odoo as a source and a target; ``client`` exposes the request stats (closing it
    closes the single-attempt client too: they share the session)."""

    name = "odoo"
    Config = OdooConfig

    def __init__(self, config: OdooConfig, **client_options: Any):
        super().__init__(config)
        self.config: OdooConfig = config
        self.rpc = OdooRpc(config, **client_options)
        self.client = self.rpc.client
        self.reader = OdooReader(self.rpc, config)
        self.writer = OdooWriter(self.rpc, config)

    def check(self) -> None:
        """Log in, then check every stream's model and fields exist for this user."""
        self.rpc.version()
        self.rpc.authenticate()
        check_streams("Odoo", self.config.streams, self._problem_of, " - fix the field "
                      "names in the stream config or install the module that adds them "
                      "(crm, sale, account)")

    def _problem_of(self, stream: OdooStreamConfig) -> str | None:
        """What the stream's model or its children's models lack (every model checked)."""
        problems = []
        for model, fields in [(stream.model, stream.fields),
                              *((c.model, c.fields) for c in stream.children.values())]:
            try:
                known = self.rpc.field_types(model)
            except ConfigError as exc:   # an unknown model: go on checking the others
                problems.append(str(exc))
                continue
            missing = sorted(set(fields) - set(known))
            if missing:
                problems.append(f"{model} has no field(s) {', '.join(missing)}")
        return "; ".join(problems) or None

    def streams(self) -> Sequence[StreamInfo]:
        return [StreamInfo(name=name, key=("id",), cursor_field=s.cursor_field,
                           children=tuple(s.children), writable=bool(s.key_field),
                           delete_modes=(() if not s.key_field else ("delete", "archive")
                                         if "active" in s.fields else ("delete",)))
                for name, s in self.config.streams.items()]

    def lookup(self, stream: str, keys: Sequence[str]) -> Mapping[str, Row]:
        return self.reader.lookup(self._stream_config(stream), [str(k) for k in keys])

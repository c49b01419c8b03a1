"""The Tryton ERP connector (entry point ``tryton``), over trytond's JSON-RPC.

Streams (see ``docs/connectors/tryton.md`` for the row shapes):

========== =================== ============ ========
stream     model               key          writable
========== =================== ============ ========
parties    party.party         code         yes
products   product.product     code         yes
sales      sale.sale + lines   reference    yes
sale_states sale.sale          reference    no
invoices   account.invoice     id           no
forecasts  stock.forecast      key          yes (write-only)
========== =================== ============ ========

``forecasts`` (module ``stock_forecast``) is written, not read: see
:mod:`crm2erp.connectors.tryton.forecasts`. Duplicate parties are
merged with Tryton's ``party.replace`` (:meth:`TrytonConnector.merge`). Every other stream is
incremental on the record's change time (``write_date``, else
``create_date``), exposed as ``updated_at``.
"""

from __future__ import annotations

__all__ = ["TrytonConnector", "TrytonConfig", "TrytonClient", "TrytonUserError"]

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from crm2erp.connectors.base import (
    Batch,
    Connector,
    Cursor,
    DeleteMode,
    Row,
    StreamInfo,
    WriteResult,
)
from crm2erp.connectors.tryton.client import TrytonClient, TrytonUserError
from crm2erp.connectors.tryton.common import Lookups
from crm2erp.connectors.tryton.config import TrytonConfig
from crm2erp.connectors.tryton.forecasts import ForecastWriter
from crm2erp.connectors.tryton.parties import PartyWriter
from crm2erp.connectors.tryton.products import ProductWriter
from crm2erp.connectors.tryton.sales import SaleWriter
from crm2erp.connectors.tryton.source import STREAMS, TrytonReader
from crm2erp.errors import ConfigError, FatalError

WRITERS = (PartyWriter, ProductWriter, SaleWriter, ForecastWriter)
WRITABLE = tuple(writer.stream for writer in WRITERS)
REQUIRED_MODELS = ("party.party", "product.product", "sale.sale", "account.invoice")


class TrytonConnector(Connector):
    """Tryton as a target (parties, products, sales) and a source (all five streams)."""

    name = "tryton"
    Config = TrytonConfig
    #: row fields that steer a write and are not stored (reconcile does not compare them)
    write_options = ("replace_contact_mechanisms",)

    def __init__(self, config: TrytonConfig, **client_options: Any):
        super().__init__(config)
        self.config: TrytonConfig = config
        self.client = TrytonClient(config, **client_options)
        lookups = Lookups(self.client)
        self.reader = TrytonReader(self.client, config)
        self.writers = {writer.stream: writer(self.client, config, lookups, self.reader)
                        for writer in WRITERS}

    def check(self) -> None:
        """Log in, load the user's context, and check the modules the streams need."""
        ctx = self.client.context
        if not ctx.get("company"):
            raise ConfigError(f"Tryton user {self.config.username!r} has no current company; "
                              "set one in Tryton or give `company:` in the connection")
        found = self.client.search_read("ir.model", [("name", "in", list(REQUIRED_MODELS))],
                                        ["name"])
        missing = sorted(set(REQUIRED_MODELS) - {m["name"] for m in found})
        if missing:
            raise FatalError(f"Tryton database {self.config.database!r} lacks "
                             f"{', '.join(missing)}; activate the modules sale and "
                             "account_invoice (trytond-admin -u sale --activate-dependencies)")

    def streams(self) -> Sequence[StreamInfo]:
        return [StreamInfo(name=name, key=(self.reader.spec(name).key,),
                           cursor_field="updated_at", writable=name in WRITABLE, id_field="id",
                           merges=name == "parties")
                for name in STREAMS] + [StreamInfo(name="forecasts", key=("key",), writable=True)]

    def read(self, stream: str, since: Cursor | None = None, *,
             batch_size: int = 500) -> Iterator[Batch]:
        self.stream(stream)
        if stream == "forecasts":
            raise ConfigError("Tryton stream 'forecasts' is write-only; read stock forecasts "
                              "with a `rest` or `sql` connection if you need them back")
        return self.reader.read(stream, since, batch_size)

    def _writer(self, stream: str) -> Any:
        if not self.stream(stream).writable:
            raise ConfigError(f"Tryton stream {stream!r} is read-only; write to one of "
                              f"{', '.join(WRITABLE)}")
        return self.writers[stream]

    def upsert(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        writer = self._writer(stream)
        return writer.upsert(rows) if rows else []

    def lookup(self, stream: str, keys: Sequence[str]) -> Mapping[str, Row]:
        return self._writer(stream).lookup([str(k) for k in keys])

    def delete(self, stream: str, keys: Sequence[str],
               mode: DeleteMode) -> Sequence[WriteResult]:
        """Parties/products (by Tryton id): archive, or delete falling back to archive.
        Sales (by sale id): cancel. An id Tryton does not have is a FAILED result."""
        return self._writer(stream).delete([str(k) for k in keys], mode)

    def merge(self, stream: str, loser_id: str, survivor_id: str) -> WriteResult:
        """Parties (by Tryton id): Tryton's ``party.replace`` wizard moves the loser's
        sales, invoices, addresses... to the survivor and archives the loser with
        ``replaced_by`` set (:meth:`PartyWriter.merge`)."""
        if not self.stream(stream).merges:
            raise ConfigError(f"Tryton stream {stream!r} has no merge; only parties are "
                              "merged (party.replace)")
        return self.writers["parties"].merge(str(loser_id), str(survivor_id))

    def close(self) -> None:
        self.client.close()

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
    WriteAction,
    WriteResult,
)
from crm2erp.connectors.toolkit.records import for_found_ids
from crm2erp.connectors.tryton.client import TrytonClient, TrytonUserError
from crm2erp.connectors.tryton.common import Lookups
from crm2erp.connectors.tryton.config import TrytonConfig
from crm2erp.connectors.tryton.forecasts import ForecastWriter
from crm2erp.connectors.tryton.replace import replace_party
from crm2erp.connectors.tryton.sales import SaleWriter
from crm2erp.connectors.tryton.source import STREAM_MODELS, TrytonReader
from crm2erp.connectors.tryton.target import PartyProductWriter
from crm2erp.errors import ConfigError, FatalError

WRITABLE = ("parties", "products", "sales", "forecasts")
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
        self.writer = PartyProductWriter(self.client, config, lookups)
        self.sales = SaleWriter(self.client, config, lookups)
        self.forecasts = ForecastWriter(self.client, config, lookups)

    def check(self) -> None:
        """Log in, load the user's context, and check the modules the streams need."""
        ctx = self.client.context
        if not ctx.get("company"):
            raise ConfigError(f"Tryton user {self.config.username!r} has no current company; "
                              "set one in Tryton or give `company:` in the connection")
        found = self.client.model("ir.model", "search_read",
                                  [("name", "in", list(REQUIRED_MODELS))], 0, None, None,
                                  ["name"])
        missing = sorted(set(REQUIRED_MODELS) - {m["name"] for m in found})
        if missing:
            raise FatalError(f"Tryton database {self.config.database!r} lacks "
                             f"{', '.join(missing)}; activate the modules sale and "
                             "account_invoice (trytond-admin -u sale --activate-dependencies)")

    def streams(self) -> Sequence[StreamInfo]:
        return [StreamInfo(name=name,
                           key=(self.config.party.key_field if name == "parties" else key,),
                           cursor_field="updated_at", writable=name in WRITABLE, id_field="id",
                           merges=name == "parties")
                for name, (_, key, _, _) in STREAM_MODELS.items()] + [
            StreamInfo(name="forecasts", key=("key",), writable=True)]

    def read(self, stream: str, since: Cursor | None = None, *,
             batch_size: int = 500) -> Iterator[Batch]:
        self.stream(stream)
        if stream == "forecasts":
            raise ConfigError("Tryton stream 'forecasts' is write-only; read stock forecasts "
                              "with a `rest` or `sql` connection if you need them back")
        return self.reader.read(stream, since, batch_size)

    def _writable(self, stream: str) -> None:
        if not self.stream(stream).writable:
            raise ConfigError(f"Tryton stream {stream!r} is read-only; write to one of "
                              f"{', '.join(WRITABLE)}")

    def upsert(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        self._writable(stream)
        if not rows:
            return []
        if stream == "sales":
            return self.sales.upsert(rows)
        if stream == "forecasts":
            return self.forecasts.upsert(rows)
        if stream == "parties":
            return self.writer.upsert_parties(rows)
        return self.writer.upsert_products(rows)

    def lookup(self, stream: str, keys: Sequence[str]) -> Mapping[str, Row]:
        self._writable(stream)
        keys = [str(k) for k in keys]
        if stream == "sales":
            return self.sales.existing(keys)
        if stream == "forecasts":
            return self.forecasts.lookup(keys)
        return self.writer.lookup(stream, keys)

    def delete(self, stream: str, keys: Sequence[str],
               mode: DeleteMode) -> Sequence[WriteResult]:
        """Parties/products (by Tryton id): archive, or delete falling back to archive.
        Sales (by sale id): cancel. An id Tryton does not have is a FAILED result."""
        self._writable(stream)
        keys = [str(k) for k in keys]
        if stream == "forecasts":
            raise ConfigError("Tryton forecasts are not deleted: a forecast line emptied "
                              "by the CRM is written with quantity 0")
        if stream != "sales":
            return self.writer.delete(stream, keys, mode)
        return self._delete_sales(keys, mode)

    def merge(self, stream: str, loser_id: str, survivor_id: str) -> WriteResult:
        """Parties (by Tryton id): Tryton's ``party.replace`` wizard moves the loser's
        sales, invoices, addresses... to the survivor and archives the loser with
        ``replaced_by`` set (:mod:`crm2erp.connectors.tryton.replace`)."""
        if not self.stream(stream).merges:
            raise ConfigError(f"Tryton stream {stream!r} has no merge; only parties are "
                              "merged (party.replace)")
        return replace_party(self.client, str(loser_id), str(survivor_id))

    def _delete_sales(self, ids: Sequence[str], mode: DeleteMode) -> list[WriteResult]:
        """``ids`` are sale ids (the engine's target ids); a missing sale is FAILED."""
        def find(wanted: list[int]) -> dict[int, dict]:
            return {s["id"]: s for s in self.client.model(
                "sale.sale", "search_read", [("id", "in", wanted)], 0, None, None,
                ["reference", "state"])}

        def cancel(key: str, sid: int, sale: dict) -> WriteResult:
            if mode is DeleteMode.IGNORE or sale["state"] == "cancelled":
                return WriteResult(key, WriteAction.UNCHANGED, key)
            ref = sale["reference"] or key
            if sale["state"] not in ("draft", "quotation"):
                return WriteResult(key, WriteAction.FAILED, key, error=(
                    f"sale {ref!r} is {sale['state']}; Tryton only cancels drafts and "
                    "quotations - handle it in Tryton (return sale or credit note)"))
            try:
                if sale["state"] == "quotation":
                    self.client.model("sale.sale", "draft", [sid])
                self.client.model("sale.sale", "cancel", [sid])
                if mode is DeleteMode.DELETE:
                    self.client.model("sale.sale", "delete", [sid])
                return WriteResult(key, WriteAction.UPDATED, key)
            except TrytonUserError as exc:
                return WriteResult(key, WriteAction.FAILED, key,
                                   error=f"sale {ref!r} is {sale['state']}: {exc}")

        return for_found_ids(ids, find, cancel, lambda key: WriteResult(
            key, WriteAction.FAILED, error=f"no sale.sale with id {key!r} in Tryton (deleted "
            "by hand?)"))

    def close(self) -> None:
        self.client.close()

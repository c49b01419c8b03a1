"""Write side for ``sales``: sale orders with their lines, created and confirmed.

A row becomes a ``sale.sale`` keyed by ``reference`` (the CRM/canonical
reference). Over RPC no on-change runs, so this module fills what the
Tryton client would: invoice and shipment addresses (the party's invoice /
delivery address, else its first), payment term (the party's, else the
accounting default), line unit and taxes (the product's sale unit and
customer taxes). New sales are created as drafts in one batch call, then
``quote`` and ``confirm`` (the sale's buttons) are called in batches;
confirming queues Tryton's ``process``, which creates the invoice and the
shipment according to the sale's methods. Creates and buttons are sent once;
after a lost answer the sales are looked up (by reference, by state) and only
what did not happen is sent again, so a sale is never created twice.

A sale already confirmed cannot change in Tryton: an identical row is
UNCHANGED, a different one FAILED with the reason. A draft or quotation is
rewritten (lines replaced) and confirmed again.
"""

from __future__ import annotations

__all__ = ["SaleWriter"]

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.toolkit.records import as_id, for_found_ids
from crm2erp.connectors.toolkit.results import RowResults
from crm2erp.connectors.tryton.client import TrytonUserError
from crm2erp.connectors.tryton.common import NOT_ACTIVE, known, press, search_in
from crm2erp.connectors.tryton.rows import value_at
from crm2erp.connectors.tryton.writer import TrytonWriter
from crm2erp.errors import RetriableError

EDITABLE = ("draft", "quotation")
CONFIRMED = ("confirmed", "processing", "done")   # states a confirmed sale moves through
QUOTED = ("quotation", *CONFIRMED)


class SaleWriter(TrytonWriter):
    stream, model = "sales", "sale.sale"

    def lookup(self, keys: Sequence[str]) -> dict[str, dict]:
        return self.reader.lookup(self.stream, sorted(set(keys)))

    # -- reading helpers ---------------------------------------------------
    def _parties(self, rows: Sequence[Row]) -> dict[Any, dict]:
        """Party id/code -> {id, code, invoice_address, shipment_address, payment_term}."""
        ids = {as_id(r.get("party_id")) for r in rows} - {None}
        codes = {str(r["party_code"]) for r in rows if r.get("party_code")}
        domain: list[Any] = ["OR", ("id", "in", sorted(ids)), ("code", "in", sorted(codes))]
        parties = self.client.search_read("party.party", domain, [
            "code", "addresses", "customer_payment_term"], context=NOT_ACTIVE)
        addr_ids = [a for p in parties for a in p["addresses"]]
        addrs = {a["id"]: a for a in self.client.read("party.address", addr_ids,
                                                      ["invoice", "delivery", "active"])}
        out: dict[Any, dict] = {}
        for p in parties:
            mine = [addrs[a] for a in p["addresses"] if addrs[a].get("active", True)]
            info = {"id": p["id"], "code": p["code"], "invoice_address": _pick(mine, "invoice"),
                    "shipment_address": _pick(mine, "delivery"),
                    "payment_term": p.get("customer_payment_term")}
            out[p["id"]] = info
            if p.get("code"):
                out[p["code"]] = info
        return out

    def _products(self, rows: Sequence[Row]) -> dict[str, dict]:
        codes = sorted({str(ln.get("product")) for r in rows for ln in r.get("lines") or []
                        if ln.get("product")})
        found = search_in(self.client, "product.product", "code", codes,
                          ["code", "sale_uom", "salable", "template.account_category"])
        # taxes come from the product's account category (what the on-change would use)
        cats = sorted({value_at(p, "template.account_category") for p in found} - {None})
        taxes = {c["id"]: c["customer_taxes_used"] for c in self.client.read(
            "product.category", cats, ["customer_taxes_used"])}
        for p in found:
            p["customer_taxes_used"] = taxes.get(value_at(p, "template.account_category"), [])
        return {p["code"]: p for p in found}

    @cached_property
    def _defaults(self) -> tuple[Any, int | None]:
        """The accounting's default payment term and the company's currency (read once)."""
        conf = self.client.read("account.configuration", [1], ["default_customer_payment_term"])
        company = self.client.context.get("company")
        return (conf[0].get("default_customer_payment_term") if conf else None,
                self.client.read("company.company", [company], ["currency"])[0]["currency"]
                if company else None)

    # -- building values -----------------------------------------------------
    def _vals(self, row: Row, parties: Mapping, products: Mapping) -> tuple[dict, list]:
        """Header values and line values of one row; ValueError names what is wrong."""
        party = parties.get(as_id(row.get("party_id"))) or parties.get(row.get("party_code"))
        if party is None:
            who = row.get("party_id") or row.get("party_code")
            raise ValueError(f"customer {who!r} is not a party in Tryton; sync the account first")
        if party["invoice_address"] is None:
            raise ValueError(f"party {party['code']!r} has no address; Tryton needs one to "
                             "invoice and ship the sale")
        term, currency = self._defaults
        if row.get("currency"):
            currency = known(self.lookups.one("currency.currency", "code", str(row["currency"])),
                             f"currency {row['currency']!r} is not in Tryton")
        header: dict[str, Any] = {
            "reference": str(row["reference"]), "party": party["id"],
            "invoice_address": party["invoice_address"],
            "shipment_address": party["shipment_address"], "currency": currency,
            "payment_term": party["payment_term"] or term,
            "description": row.get("description"),
        }
        if self.client.context.get("company"):
            header["company"] = self.client.context["company"]
        if row.get("sale_date"):
            header["sale_date"] = _date(row["sale_date"])
        if not row.get("lines"):
            raise ValueError("a sale needs at least one line")
        return header, [self._line(no, ln, products) for no, ln in enumerate(row["lines"], 1)]

    def _line(self, no: int, ln: Mapping[str, Any], products: Mapping) -> dict[str, Any]:
        code = str(ln.get("product") or "")
        product = known(products.get(code), f"line {no}: product {code!r} is not in Tryton; "
                                            "sync the product first")
        if not product.get("salable"):
            raise ValueError(f"line {no}: product {code!r} is not salable in Tryton")
        try:
            quantity = float(Decimal(str(ln.get("quantity"))))
            price = Decimal(str(ln.get("unit_price")))
        except (InvalidOperation, ValueError, TypeError):
            raise ValueError(f"line {no}: quantity {ln.get('quantity')!r} and unit_price "
                             f"{ln.get('unit_price')!r} must be numbers") from None
        unit = product["sale_uom"]
        if ln.get("unit"):
            unit = known(self.lookups.uom(str(ln["unit"])),
                         f"line {no}: unit {ln['unit']!r} is not in Tryton")
        vals = {"type": "line", "product": product["id"], "quantity": quantity,
                "unit": unit, "unit_price": price,
                "taxes": [["add", product.get("customer_taxes_used") or []]]}
        if ln.get("description"):
            vals["description"] = str(ln["description"])
        return vals

    # -- upsert ----------------------------------------------------------------
    def upsert(self, rows: Sequence[Row]) -> list[WriteResult]:
        results = RowResults.keyed(
            rows, lambda row: str(row.get("reference") or "").strip(),
            missing="row has no 'reference' (the key Tryton matches sales on)",
            twice=lambda key: f"sale reference {key!r} appears twice in one batch")
        existing = self.lookup(list(results.keys.values()))
        live = [rows[p] for p in results.keys]
        parties, products = (self._parties(live), self._products(live)) if live else ({}, {})
        creates, rewrites = {}, []
        for pos, key in results.keys.items():
            try:
                header, lines = self._vals(rows[pos], parties, products)
            except ValueError as exc:
                results.fail(pos, f"sale {key!r}: {exc}")
                continue
            current = existing.get(key)
            if current is None:
                creates[pos] = {**header, "lines": [["create", lines]]}
            elif current["state"] in EDITABLE:
                rewrites.append((pos, current, header, lines))
            elif _same(current, header, lines, products):
                results.set(pos, WriteAction.UNCHANGED, str(current["id"]))
            else:
                results.fail(pos, f"sale {key!r} (Tryton {current['number'] or current['id']}) "
                                  f"is {current['state']} and can no longer change in Tryton; "
                                  "cancel it there and send the order under a new reference")
        confirm = self.create("sale.sale", results, creates, lambda refs: {
            ref: sale["id"] for ref, sale in self.lookup(refs).items()})
        for pos, current, header, lines in rewrites:
            if self._rewrite(pos, current, header, lines, results):
                confirm[pos] = current["id"]
        if self.config.confirm_sales:
            self._confirm(confirm, results)
        return results.all()

    def _rewrite(self, pos: int, current: dict, header: dict, lines: list,
                 results: RowResults) -> bool:
        sid = current["id"]
        old_lines = self.client.read("sale.sale", [sid], ["lines"])[0]["lines"]
        try:
            if current["state"] == "quotation":
                self.client.model("sale.sale", "draft", [sid], idempotent=False)
            self.client.model("sale.sale", "write", [sid], {
                **header, "lines": [["delete", old_lines], ["create", lines]]},
                idempotent=False)
        except RetriableError:   # a lost answer: the next run plans again from Tryton
            raise
        except Exception as exc:  # noqa: BLE001 - RecordError or server error: this row only
            results.fail(pos, f"sale {results.key(pos)!r}: {exc}")
            return False
        results.set(pos, WriteAction.UPDATED, str(sid))
        return True

    def _confirm(self, sale_ids: Mapping[int, int], results: RowResults) -> None:
        """``quote`` then ``confirm``; a refused sale stays as it was, row FAILED.

        Buttons are sent once: pressed again after a lost answer, Tryton refuses a
        button the new state hides. So a lost answer reads the sales' states and
        presses the button only on those it did not move. The next upsert of a
        refused row finds the sale editable and tries again.
        """
        position = {results.key(pos): pos for pos in sale_ids}
        todo = {results.key(pos): sid for pos, sid in sale_ids.items()}
        for button, reached in (("quote", QUOTED), ("confirm", CONFIRMED)):
            outcomes = press(self.client, "sale.sale", button, todo, reached,
                             batch_size=self.config.write_batch_size)
            for key, outcome in outcomes.items():
                if not isinstance(outcome, int):
                    results.fail(position[key], f"sale {key!r} was saved (id {todo[key]}) but "
                                                f"Tryton refused to {button} it: {outcome}")
            todo = {k: sid for k, sid in todo.items() if isinstance(outcomes.get(k), int)}

    # -- delete ------------------------------------------------------------------
    def delete(self, ids: Sequence[str], mode: DeleteMode) -> list[WriteResult]:
        """``ids`` are sale ids (the engine's target ids): cancelled (IGNORE: nothing);
        a missing sale is FAILED."""
        def cancel(key: str, sid: int, sale: dict) -> WriteResult:
            if mode is DeleteMode.IGNORE or sale["state"] == "cancelled":
                return WriteResult(key, WriteAction.UNCHANGED, key)
            ref = sale["reference"] or key
            if sale["state"] not in EDITABLE:
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

        return for_found_ids(ids, lambda wanted: self.by_id(wanted, ["reference", "state"]),
                             cancel, lambda key: WriteResult(
            key, WriteAction.FAILED, error=f"no sale.sale with id {key!r} in Tryton (deleted "
            "by hand?)"))


def _pick(addresses: Sequence[Mapping], flag: str) -> int | None:
    """The first address flagged ``invoice``/``delivery``, else the first address."""
    flagged = [a["id"] for a in addresses if a.get(flag)]
    return flagged[0] if flagged else (addresses[0]["id"] if addresses else None)


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _same(current: Mapping, header: Mapping, lines: Sequence[Mapping],
          products: Mapping[str, dict]) -> bool:
    """Does a confirmed sale already say what the row says (party and lines)?"""
    by_id = {p["id"]: code for code, p in products.items()}
    want = sorted((by_id.get(ln["product"]), float(ln["quantity"]),
                   Decimal(ln["unit_price"]).normalize()) for ln in lines)
    have = sorted((ln["product"], float(ln["quantity"] or 0),
                   Decimal(str(ln["unit_price"])).normalize()) for ln in current["lines"])
    return current["party_id"] == header["party"] and want == have

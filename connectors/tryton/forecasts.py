"""Write side for ``forecasts``: demand per product and month as Tryton stock forecasts.

Tryton's module ``stock_forecast`` keeps a ``stock.forecast`` document per
warehouse, destination (the customer location) and date range, with one
``stock.forecast.line`` per product. A row ``{key, product, period,
quantity, uom?, warehouse?}`` becomes the line of ``product`` in the
forecast of the warehouse for ``period``'s month (``from_date`` = first,
``to_date`` = last day): found when it exists (draft or done, also one a
planner made by hand), created otherwise.

Only **done** (confirmed) forecasts count for Tryton's planning: the supply
run (``stock_supply``) creates their moves while it computes purchase and
production requests. So a changed done forecast is set back to draft,
written and confirmed again (``forecasts.confirm``, default true); done
forecasts of the same warehouse and destination must not overlap, so a
hand-made quarterly forecast makes the monthly one fail with Tryton's reason.

Quantities are rounded half-up to the unit's rounding (Tryton refuses more
digits than the unit has: 3.5 Units is an error). A line's
``minimal_quantity`` is ``min(1, quantity)``, as Tryton's own "complete
forecast" wizard does: the supply run divides by it. A quantity of 0 keeps
the line, planning nothing; no line is created for 0.
"""

from __future__ import annotations

__all__ = ["ForecastWriter", "month_bounds", "parse_key"]

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.toolkit.batches import isolate
from crm2erp.connectors.toolkit.results import RowResults
from crm2erp.connectors.tryton.common import known, press, search_in, send_unless_done
from crm2erp.connectors.tryton.rows import value_at
from crm2erp.connectors.tryton.writer import TrytonWriter
from crm2erp.errors import ConfigError

log = logging.getLogger(__name__)
LINE_FIELDS = ["product", "quantity", "unit", "forecast"]
#: the state each button of a forecast moves it to
PRESSED = {"draft": "draft", "confirm": "done"}


def month_bounds(value: Any) -> tuple[dt.date, dt.date]:
    """First and last day of the month of a date, datetime or ISO text (``YYYY-MM[-DD]``)."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        text = str(value).strip()
        value = dt.date.fromisoformat(text + "-01" if len(text) == 7 else text[:10])
    first = value.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def parse_key(key: str) -> tuple[str | None, str, dt.date]:
    """``[warehouse|]product|YYYY-MM[-DD]`` -> (warehouse, product, first of month)."""
    head, _, period = key.rpartition("|")
    warehouse, sep, product = head.partition("|") if head.count("|") == 1 else ("", "", head)
    return (warehouse if sep else None), product, month_bounds(period)[0]


def _round(quantity: Decimal, rounding: float) -> Decimal:
    step = Decimal(str(rounding))
    return (quantity / step).to_integral_value(ROUND_HALF_UP) * step


class ForecastWriter(TrytonWriter):
    """Upserts ``forecasts`` rows into ``stock.forecast`` documents and their lines."""

    stream, model = "forecasts", "stock.forecast"

    def __init__(self, *args: Any):
        super().__init__(*args)
        self._places: dict[tuple[str, str | None], int] = {}

    # -- locations -------------------------------------------------------------
    def _location(self, kind: str, code: str | None, setting: str) -> int:
        """A location id by code, or the only location of that type."""
        key = (kind, code)
        if key not in self._places:
            domain: list[Any] = [("type", "=", kind)]
            if code:
                domain.append(("code", "=", code))
            found = self.client.search_read("stock.location", domain, ["code"], limit=2)
            if len(found) != 1:
                what = (f"no {kind} location with code {code!r}" if code and not found else
                        f"{len(found) or 'no'} {kind} location(s)")
                raise ConfigError(f"Tryton forecasts: {what}; set `forecasts.{setting}` in "
                                  "the connection to the location code to use")
            self._places[key] = found[0]["id"]
        return self._places[key]

    def _warehouse(self, code: Any) -> int:
        return self._location("warehouse", str(code) if code else
                              self.config.forecasts.warehouse, "warehouse")

    def _destination(self) -> int:
        return self._location("customer", self.config.forecasts.destination, "destination")

    # -- rows ------------------------------------------------------------------
    def _wanted(self, row: Row, products: Mapping[str, dict]) -> dict[str, Any]:
        """The line one row asks for; ValueError says what is wrong with it."""
        code = str(row.get("product") or "").strip()
        product = known(products.get(code),
                        f"product {code!r} is not in Tryton; sync the product first")
        if product["type"] != "goods" or product.get("consumable"):
            raise ValueError(f"product {code!r} is not a stock good (Tryton forecasts only "
                             "goods that are not consumable)")
        try:
            quantity = Decimal(str(row.get("quantity")))
        except (InvalidOperation, ValueError):
            raise ValueError(f"quantity {row.get('quantity')!r} is not a number") from None
        if quantity < 0:
            raise ValueError(f"quantity {quantity} is negative")
        unit = product["default_uom"]
        if row.get("uom"):
            unit = known(self.lookups.uom(str(row["uom"])),
                         f"unit {row['uom']!r} is not in Tryton")
        try:
            first, last = month_bounds(row.get("period"))
        except (TypeError, ValueError):
            raise ValueError(f"period {row.get('period')!r} is not a date") from None
        return {"product": product["id"], "code": code, "unit": unit, "quantity": quantity,
                "from": first, "to": last, "warehouse": self._warehouse(row.get("warehouse"))}

    # -- upsert ----------------------------------------------------------------
    def upsert(self, rows: Sequence[Row]) -> list[WriteResult]:
        results = RowResults(len(rows), {pos: str(row.get("key") or "")
                                         for pos, row in enumerate(rows)})
        products = {p["code"]: p for p in search_in(
            self.client, "product.product", "code",
            sorted({str(r.get("product") or "").strip() for r in rows}),
            ["code", "default_uom", "type", "consumable"])}
        destination = self._destination()
        groups: dict[tuple[int, dt.date, dt.date], list[tuple[int, dict]]] = defaultdict(list)
        seen: set[tuple] = set()
        for pos, row in enumerate(rows):
            try:
                want = self._wanted(row, products)
            except ValueError as exc:
                _fail(results, pos, str(exc))
                continue
            ident = (want["warehouse"], want["from"], want["product"])
            if ident in seen:
                _fail(results, pos, f"product {want['code']} appears twice for one month")
                continue
            seen.add(ident)
            groups[(want["warehouse"], want["from"], want["to"])].append((pos, want))
        units = {u["id"]: u["rounding"] for u in self.client.read("product.uom", sorted(
            {w["unit"] for group in groups.values() for _, w in group}), ["rounding"])}
        for (warehouse, first, last), group in groups.items():
            for _, want in group:
                want["quantity"] = _round(want["quantity"], units[want["unit"]])
            self._document((warehouse, destination, first, last), group, results)
        return results.all()

    def _find(self, warehouse: int, destination: int, first: dt.date,
              last: dt.date) -> dict | None:
        domain = [("warehouse", "=", warehouse), ("destination", "=", destination),
                  ("from_date", "=", first), ("to_date", "=", last),
                  ("state", "in", ["draft", "done"])]
        if self.client.context.get("company"):
            domain.append(("company", "=", self.client.context["company"]))
        found = self.client.search_read("stock.forecast", domain, ["state", "lines"],
                                        order=[["state", "DESC"], ["id", "ASC"]])
        return found[0] if found else None

    def _document(self, month: tuple[int, int, dt.date, dt.date],
                  group: list[tuple[int, dict]], results: RowResults) -> None:
        """Bring one month's forecast document (``month``: warehouse, destination, first
        and last day) up to date with the group's rows."""
        doc = self._find(*month)
        lines = {ln["product"]: ln for ln in self.client.read(
            "stock.forecast.line", doc["lines"] if doc else [], LINE_FIELDS)}
        changes = []
        for pos, want in group:
            line, qty = lines.get(want["product"]), float(want["quantity"])
            if line is None and qty == 0:
                results.set(pos, WriteAction.UNCHANGED)
            elif line is not None and line["quantity"] == qty and line["unit"] == want["unit"]:
                results.set(pos, WriteAction.UNCHANGED, str(line["id"]))
            else:
                vals = {"quantity": qty, "minimal_quantity": min(1.0, qty),
                        "unit": want["unit"]}
                if line is None:
                    vals["product"] = want["product"]
                changes.append((pos, want, line, vals))
        if doc is None and changes:
            warehouse, destination, first, last = month
            header = {"warehouse": warehouse, "destination": destination,
                      "from_date": first, "to_date": last}
            if self.client.context.get("company"):
                header["company"] = self.client.context["company"]
            made = send_unless_done(self.client, "stock.forecast", "create", {"month": header},
                                    lambda keys: self._month(month), batch_size=1)["month"]
            if isinstance(made, str):
                for pos, *_ in changes:
                    _fail(results, pos, f"Tryton refused to create the forecast: {made}")
                return
            doc = {"id": made, "state": "draft"}
        if doc is None:
            return
        if changes and doc["state"] == "done":
            reopened = self._press(doc["id"], "draft")
            if reopened is not None:
                for pos, *_ in changes:
                    _fail(results, pos, f"Tryton refused to reopen the forecast: {reopened}")
                return
            doc["state"] = "draft"

        def write(batch):
            creates = [vals for _, _, line, vals in batch if line is None]
            ops: list[Any] = [["create", creates]] if creates else []
            for _, _, line, vals in batch:
                if line is not None:
                    ops += [["write", [line["id"]], vals]]
            self.client.model("stock.forecast", "write", [doc["id"]], {"lines": ops},
                              idempotent=False)   # lost answer: the next run plans again

        written = [item for done, _ in isolate(changes, write, lambda item, error: _fail(
            results, item[0], error)) for item in done]
        ids = {ln["product"]: ln["id"] for ln in self.client.search_read(
            "stock.forecast.line", [("forecast", "=", doc["id"])], ["product"])} if written else {}
        for pos, want, line, _ in written:
            results.set(pos, WriteAction.CREATED if line is None else WriteAction.UPDATED,
                        str(ids.get(want["product"]) or ""))
        if self.config.forecasts.confirm and doc["state"] == "draft":
            refused = self._press(doc["id"], "confirm")
            if refused is not None:
                for pos, _ in group:
                    if results.slots[pos] is not None and results.slots[pos].ok:
                        _fail(results, pos, f"saved in forecast {doc['id']} but Tryton refused "
                                            f"to confirm it, so planning ignores it: {refused}")

    def _month(self, month: tuple[int, int, dt.date, dt.date]) -> dict[str, int]:
        """``{"month": id}`` of the month's forecast (after a lost create), or ``{}``."""
        doc = self._find(*month)
        return {"month": doc["id"]} if doc is not None else {}

    def _press(self, forecast: int, button: str) -> str | None:
        """Press ``button`` (``draft``/``confirm``) on one forecast, once (a lost answer:
        its state is read and the button pressed again only if it did not move);
        Tryton's refusal, or None."""
        outcome = press(self.client, "stock.forecast", button, {"month": forecast},
                        (PRESSED[button],), batch_size=1)["month"]
        return outcome if isinstance(outcome, str) else None

    # -- lookup and delete -------------------------------------------------------
    def lookup(self, keys: Sequence[str]) -> dict[str, Row]:
        """Current lines by key (``[warehouse|]product|YYYY-MM[-DD]``), for dry runs."""
        wanted = {}
        for key in keys:
            try:
                wanted[key] = parse_key(key)
            except ValueError:
                log.debug("tryton forecasts: key %r is not [warehouse|]product|period", key)
        if not wanted:
            return {}
        destination = self._destination()
        found: dict[str, Row] = {}
        for key, (warehouse, product, first) in wanted.items():
            doc = self._find(self._warehouse(warehouse), destination, *month_bounds(first))
            for line in self.client.read("stock.forecast.line", doc["lines"] if doc else [],
                                         ["product.code", "quantity", "unit.name"]):
                if value_at(line, "product.code") == product:
                    found[key] = {"key": key, "product": product, "period": first,
                                  "quantity": Decimal(str(line["quantity"])),
                                  "uom": value_at(line, "unit.name"),
                                  "warehouse": warehouse, "id": line["id"]}
        return found

    def delete(self, ids: Sequence[str], mode: DeleteMode) -> list[WriteResult]:
        raise ConfigError("Tryton forecasts are not deleted: a forecast line emptied "
                          "by the CRM is written with quantity 0")


def _fail(results: RowResults, pos: int, error: str) -> None:
    results.fail(pos, f"forecast {results.key(pos)!r}: {error}")

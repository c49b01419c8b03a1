"""The console's business view: management figures from the hub's canonical memory.

Everything here is read from the state store's last canonical state of each
record (no connection to the CRM or the ERP): open pipeline and forecast by
month (Opportunity), won deals -> orders -> invoiced -> paid (SalesOrder,
Invoice), overdue balances and top customers by revenue (Invoice, Account),
and order status counts (SalesOrder). Money is summed per currency, never
across currencies. Every figure keeps the canonical ids behind it, so the
page can link each number to its records.
"""

from __future__ import annotations

__all__ = ["Figure", "BusinessView", "business_view", "CLOSED_STAGES"]

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

CLOSED_STAGES = ("won", "lost", "closed_won", "closed_lost")
TOP_CUSTOMERS = 10


@dataclass
class Figure:
    """One number on the page: a count and money per currency, and the records
    behind it (``entity`` and canonical ids), reachable as ``/business/FIGURE-KEY``."""

    key: str
    label: str
    entity: str
    ids: list[str] = field(default_factory=list)
    amounts: dict[str, Decimal] = field(default_factory=dict)
    extra: dict[str, Decimal] = field(default_factory=dict)   # e.g. the weighted forecast

    @property
    def count(self) -> int:
        return len(self.ids)

    def add(self, canonical_id: str, currency: str | None, amount: Decimal | None,
            extra: Decimal | None = None) -> None:
        self.ids.append(canonical_id)
        if amount is not None:
            cur = currency or "?"
            self.amounts[cur] = self.amounts.get(cur, Decimal(0)) + amount
            if extra is not None:
                self.extra[cur] = self.extra.get(cur, Decimal(0)) + extra


@dataclass
class BusinessView:
    as_of: dt.date
    pipeline: list[Figure]          # open opportunities by close month
    funnel: list[Figure]            # won deals, orders, invoiced, paid
    overdue: list[Figure]           # per customer, the largest first
    top_customers: list[Figure]     # invoiced revenue per customer
    order_status: list[Figure]
    names: dict[str, str]           # account canonical id -> name

    def figures(self) -> dict[str, Figure]:
        return {f.key: f for group in (self.pipeline, self.funnel, self.overdue,
                                       self.top_customers, self.order_status) for f in group}


def _money(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _states(store, entity: str) -> dict[str, dict]:
    return {s.canonical_id: s.data for s in store.iter_canonical_states(entity)}


def _per_key(figures: dict[str, Figure], key: str, label: str, entity: str) -> Figure:
    if key not in figures:
        figures[key] = Figure(key, label, entity)
    return figures[key]


def _largest(figures, limit: int | None = None) -> list[Figure]:
    ranked = sorted(figures, key=lambda f: (-sum(f.amounts.values()), f.label))
    return ranked[:limit] if limit else ranked


def business_view(store, as_of: dt.date) -> BusinessView:
    """The figures as the hub knows them now; invoices due before ``as_of`` with an
    amount due are overdue."""
    accounts = _states(store, "Account")
    names = {cid: str(data.get("name") or cid) for cid, data in accounts.items()}
    opportunities = _states(store, "Opportunity")
    orders = _states(store, "SalesOrder")
    invoices = _states(store, "Invoice")

    months: dict[str, Figure] = {}
    for cid, opp in sorted(opportunities.items()):
        stage = str(opp.get("stage") or "open").lower()
        if stage in CLOSED_STAGES:
            continue
        close = _date(opp.get("close_date"))
        month = close.strftime("%Y-%m") if close else "no close date"
        amount = _money(opp.get("amount"))
        weighted = (amount * Decimal(opp.get("probability") or 0) / 100
                    if amount is not None else None)
        _per_key(months, f"pipeline-{month}", month, "Opportunity").add(
            cid, opp.get("currency"), amount, weighted)

    won = Figure("funnel-won", "won deals", "SalesOrder")
    ordered = Figure("funnel-ordered", "orders in the ERP", "SalesOrder")
    billed = Figure("funnel-invoiced", "invoiced", "Invoice")
    paid = Figure("funnel-paid", "paid", "Invoice")
    statuses: dict[str, Figure] = {}
    in_erp = store.external_ids("SalesOrder", "erp", list(orders)) if orders else {}
    for cid, order in sorted(orders.items()):
        amount, currency = _money(order.get("total_amount")), order.get("currency")
        if order.get("opportunity_id"):
            won.add(cid, currency, amount)
        if cid in in_erp or order.get("order_number"):
            ordered.add(cid, currency, amount)
        status = str(order.get("status") or "unknown")
        _per_key(statuses, f"status-{status}", status, "SalesOrder").add(cid, currency, amount)

    overdue: dict[str, Figure] = {}
    revenue: dict[str, Figure] = {}
    for cid, invoice in sorted(invoices.items()):
        status = str(invoice.get("status") or "")
        if status in ("cancelled", "draft"):
            continue
        total, currency = _money(invoice.get("total_amount")), invoice.get("currency")
        account = str(invoice.get("account_id") or "")
        billed.add(cid, currency, total)
        if status == "paid":
            paid.add(cid, currency, total)
        _per_key(revenue, f"revenue-{account}", names.get(account, account), "Invoice").add(
            cid, currency, total)
        due, owed = _date(invoice.get("due_date")), _money(invoice.get("amount_due"))
        if due is not None and due < as_of and owed:
            _per_key(overdue, f"overdue-{account}", names.get(account, account),
                     "Invoice").add(cid, currency, owed)

    return BusinessView(
        as_of=as_of, pipeline=[months[k] for k in sorted(months)],
        funnel=[won, ordered, billed, paid], overdue=_largest(overdue.values()),
        top_customers=_largest(revenue.values(), TOP_CUSTOMERS),
        order_status=sorted(statuses.values(), key=lambda f: (-f.count, f.label)),
        names=names)


def record_rows(store, figure: Figure, names: dict[str, str]) -> list[dict]:
    """The records behind ``figure``: label, customer, date, status, money and
    the ids each system knows the record by."""
    states = store.canonical_states(figure.entity, figure.ids)
    systems = {system: store.external_ids(figure.entity, system, figure.ids)
               for system in ("crm", "erp")}
    rows = []
    for cid in figure.ids:
        data = states[cid].data if cid in states else {}
        rows.append({
            "id": cid,
            "label": (data.get("invoice_number") or data.get("order_number")
                      or data.get("name") or data.get("opportunity_id") or cid),
            "customer": names.get(str(data.get("account_id")), data.get("account_id") or ""),
            "date": (data.get("due_date") or data.get("invoice_date") or data.get("order_date")
                     or data.get("close_date") or ""),
            "status": data.get("status") or data.get("stage") or "",
            "currency": data.get("currency") or "",
            "amount": data.get("total_amount") or data.get("amount") or "",
            "amount_due": data.get("amount_due"),
            "ids": {system: ids.get(cid, "") for system, ids in systems.items()},
        })
    return rows


def money(amounts: dict[str, Decimal]) -> str:
    """``{"EUR": 1234.5}`` as ``EUR 1,234.50``; several currencies side by side."""
    if not amounts:
        return "—"
    return "; ".join(f"{cur} {value:,.2f}" for cur, value in sorted(amounts.items()))


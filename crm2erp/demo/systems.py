"""The demo's sample CRM and ERP: two SQLite databases with their tables.

The ERP side also plays the ERP's own part: :func:`bill_new_orders` invoices
the sales orders the integration created, as an ERP's billing run would.
"""

from __future__ import annotations

__all__ = ["crm_tables", "erp_tables", "create_systems", "bill_new_orders"]

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa


def crm_tables(meta: sa.MetaData) -> dict[str, sa.Table]:
    def stamp():
        return sa.Column("updated_at", sa.DateTime, nullable=False)

    return {
        "accounts": sa.Table(
            "accounts", meta,
            sa.Column("id", sa.String(20), primary_key=True),
            sa.Column("company_name", sa.String(200)),
            sa.Column("account_type", sa.String(40)),
            sa.Column("email", sa.String(200)),
            sa.Column("phone", sa.String(40)),
            sa.Column("street", sa.String(200)),
            sa.Column("zip", sa.String(20)),
            sa.Column("city", sa.String(100)),
            sa.Column("country", sa.String(60)),
            sa.Column("vat_id", sa.String(40)),
            sa.Column("currency", sa.String(10)),
            sa.Column("segment", sa.String(40)),
            sa.Column("erp_customer_no", sa.String(20)),
            sa.Column("balance", sa.Numeric(14, 2)),
            sa.Column("credit_limit", sa.Numeric(14, 2)),
            stamp()),
        "contacts": sa.Table(
            "contacts", meta,
            sa.Column("id", sa.String(20), primary_key=True),
            sa.Column("account_id", sa.String(20)),
            sa.Column("first_name", sa.String(100)),
            sa.Column("last_name", sa.String(100)),
            sa.Column("email", sa.String(200)),
            sa.Column("phone", sa.String(40)),
            sa.Column("job_title", sa.String(100)),
            stamp()),
        "deals": sa.Table(
            "deals", meta,
            sa.Column("id", sa.String(20), primary_key=True),
            sa.Column("account_id", sa.String(20)),
            sa.Column("name", sa.String(200)),
            sa.Column("stage", sa.String(40)),
            sa.Column("probability", sa.Integer),
            sa.Column("amount", sa.Numeric(14, 2)),
            sa.Column("currency", sa.String(10)),
            sa.Column("close_date", sa.Date),
            sa.Column("erp_order_no", sa.String(20)),
            sa.Column("erp_order_status", sa.String(20)),
            stamp()),
        "deal_lines": sa.Table(
            "deal_lines", meta,
            sa.Column("deal_id", sa.String(20), primary_key=True),
            sa.Column("line_no", sa.Integer, primary_key=True),
            sa.Column("sku", sa.String(40)),
            sa.Column("qty", sa.Numeric(12, 3)),
            sa.Column("unit_price", sa.Numeric(14, 2))),
        "erp_invoices": sa.Table(
            "erp_invoices", meta,
            sa.Column("erp_invoice_no", sa.String(40), primary_key=True),
            sa.Column("account_id", sa.String(20)),
            sa.Column("invoice_date", sa.Date),
            sa.Column("due_date", sa.Date),
            sa.Column("status", sa.String(20)),
            sa.Column("currency", sa.String(10)),
            sa.Column("total", sa.Numeric(14, 2)),
            sa.Column("amount_due", sa.Numeric(14, 2))),
    }


def erp_tables(meta: sa.MetaData) -> dict[str, sa.Table]:
    return {
        "customers": sa.Table(
            "customers", meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("crm_ref", sa.String(64), nullable=False, unique=True),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("kind", sa.String(20)),
            sa.Column("email", sa.String(200)),
            sa.Column("phone", sa.String(40)),
            sa.Column("street", sa.String(200)),
            sa.Column("postal_code", sa.String(20)),
            sa.Column("city", sa.String(100)),
            sa.Column("country", sa.String(2)),
            sa.Column("vat", sa.String(40)),
            sa.Column("currency", sa.String(3)),
            sa.Column("balance", sa.Numeric(14, 2)),
            sa.Column("credit_limit", sa.Numeric(14, 2)),
            sa.Column("updated_at", sa.DateTime, nullable=False,
                      server_default=sa.func.current_timestamp()),
            sqlite_autoincrement=True),
        "contacts": sa.Table(
            "contacts", meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("crm_ref", sa.String(64), nullable=False, unique=True),
            sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
            sa.Column("first_name", sa.String(100)),
            sa.Column("last_name", sa.String(100), nullable=False),
            sa.Column("email", sa.String(200)),
            sa.Column("phone", sa.String(40)),
            sa.Column("job_title", sa.String(100))),
        "sales_orders": sa.Table(
            "sales_orders", meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("crm_ref", sa.String(64), nullable=False, unique=True),
            sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
            sa.Column("order_date", sa.Date),
            sa.Column("currency", sa.String(3), nullable=False),
            sa.Column("total", sa.Numeric(14, 2)),
            sa.Column("status", sa.String(20)),
            sa.Column("updated_at", sa.DateTime, nullable=False,
                      server_default=sa.func.current_timestamp())),
        "sales_order_lines": sa.Table(
            "sales_order_lines", meta,
            sa.Column("order_ref", sa.String(64), primary_key=True),
            sa.Column("line_no", sa.Integer, primary_key=True),
            sa.Column("sku", sa.String(40), nullable=False),
            sa.Column("quantity", sa.Numeric(12, 3), nullable=False),
            sa.Column("unit_price", sa.Numeric(14, 2))),
        "invoices": sa.Table(
            "invoices", meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("number", sa.String(40), nullable=False, unique=True),
            sa.Column("order_id", sa.Integer, sa.ForeignKey("sales_orders.id")),
            sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
            sa.Column("invoice_date", sa.Date),
            sa.Column("due_date", sa.Date),
            sa.Column("status", sa.String(20)),
            sa.Column("currency", sa.String(3)),
            sa.Column("total", sa.Numeric(14, 2)),
            sa.Column("amount_due", sa.Numeric(14, 2)),
            sa.Column("updated_at", sa.DateTime, nullable=False)),
    }


def create_systems(crm_url: str, erp_url: str, crm_rows: dict[str, list[dict]]) -> None:
    """Create both databases' tables and fill the CRM with ``crm_rows``."""
    crm_meta, erp_meta = sa.MetaData(), sa.MetaData()
    tables = crm_tables(crm_meta)
    erp_tables(erp_meta)
    crm = sa.create_engine(crm_url)
    erp = sa.create_engine(erp_url)
    try:
        crm_meta.create_all(crm)
        erp_meta.create_all(erp)
        with crm.begin() as conn:
            for name, rows in crm_rows.items():
                if rows:
                    conn.execute(tables[name].insert(), rows)
    finally:
        crm.dispose()
        erp.dispose()


def bill_new_orders(erp_url: str, today: dt.date) -> int:
    """The ERP's billing run: one invoice per order that has none yet; the order
    becomes ``invoiced`` and the customer's balance and credit limit are set."""
    meta = sa.MetaData()
    tables = erp_tables(meta)
    orders, invoices = tables["sales_orders"], tables["invoices"]
    customers = tables["customers"]
    engine = sa.create_engine(erp_url)
    try:
        with engine.begin() as conn:
            billed = sa.select(invoices.c.order_id).where(invoices.c.order_id.is_not(None))
            unbilled = conn.execute(
                sa.select(orders).where(orders.c.id.not_in(billed)).order_by(orders.c.id)
            ).all()
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
            rows = []
            for order in unbilled:
                paid = order.id % 3 == 0
                total = Decimal(order.total or 0)
                rows.append({
                    "number": f"INV-{today.year}-{order.id:05d}",
                    "order_id": order.id,
                    "customer_id": order.customer_id,
                    "invoice_date": today,
                    "due_date": today + dt.timedelta(days=30),
                    "status": "paid" if paid else "open",
                    "currency": order.currency,
                    "total": total,
                    "amount_due": Decimal("0.00") if paid else total,
                    "updated_at": now,
                })
            if rows:
                conn.execute(invoices.insert(), rows)
                conn.execute(orders.update().where(orders.c.id.in_([o.id for o in unbilled]))
                             .values(status="invoiced", updated_at=now))
                _update_balances(conn, customers, invoices,
                                 {o.customer_id for o in unbilled}, now)
            return len(rows)
    finally:
        engine.dispose()


def _update_balances(conn, customers, invoices, customer_ids, now) -> None:
    """Open amount per customer, and a credit limit granted by the ERP's credit control."""
    due = dict(conn.execute(
        sa.select(invoices.c.customer_id, sa.func.sum(invoices.c.amount_due))
        .where(invoices.c.customer_id.in_(customer_ids))
        .group_by(invoices.c.customer_id)).all())
    for customer_id in sorted(customer_ids):
        conn.execute(customers.update().where(customers.c.id == customer_id).values(
            balance=due.get(customer_id) or Decimal("0.00"),
            credit_limit=Decimal(10000 * (1 + customer_id % 3)), updated_at=now))

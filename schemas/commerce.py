"""Products, deals and documents: Product, Opportunity, SalesOrder, Invoice, Payment.

Money is a Decimal in the document's ``currency`` (ISO 4217); a document with
amounts and no currency is refused, since an amount without one means nothing.
"""

from __future__ import annotations

__all__ = ["Product", "OpportunityStage", "OpportunityLine", "Opportunity",
           "OrderStatus", "SalesOrderLine", "SalesOrder", "InvoiceStatus",
           "InvoiceLine", "Invoice", "Payment"]

import datetime as dt
import enum
from typing import ClassVar

from pydantic import Field, model_validator

from crm2erp.schemas.base import CanonicalModel, Entity
from crm2erp.schemas.party import Address
from crm2erp.schemas.types import CurrencyCode, Money, NonEmptyStr, Percent, Quantity


class _Priced:
    """Mixin check: amounts need a currency."""

    @model_validator(mode="after")
    def _currency_for_amounts(self):
        has_money = any(
            getattr(self, name, None) is not None
            for name in ("amount", "unit_price", "total_amount", "amount_due")
        ) or any(
            getattr(line, "unit_price", None) is not None for line in getattr(self, "lines", [])
        )
        if has_money and getattr(self, "currency", None) is None:
            raise ValueError("amounts are given but 'currency' is missing (ISO 4217, e.g. EUR)")
        return self


class Product(_Priced, Entity):
    sku: NonEmptyStr = Field(description="Product code shared by CRM and ERP.")
    name: NonEmptyStr
    description: str | None = None
    unit_price: Money | None = None
    currency: CurrencyCode | None = None
    uom: str = Field("unit", description="Unit of measure.")
    active: bool = True


class OpportunityStage(enum.StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class OpportunityLine(CanonicalModel):
    line_no: int | None = None
    product_code: str | None = None
    description: str | None = None
    quantity: Quantity = Field(default=1)
    unit_price: Money | None = None
    discount_percent: Percent | None = None


class Opportunity(_Priced, Entity):
    """A deal. A won one becomes a sales order in the ERP."""

    parents: ClassVar[dict[str, str]] = {"account_id": "Account"}

    account_id: NonEmptyStr
    name: NonEmptyStr
    stage: OpportunityStage = OpportunityStage.OPEN
    probability: Percent | None = None
    amount: Money | None = None
    currency: CurrencyCode | None = None
    close_date: dt.date | None = None
    owner: str | None = None
    lines: list[OpportunityLine] = Field(default_factory=list)


class OrderStatus(enum.StrEnum):
    DRAFT = "draft"
    CONFIRMED = "confirmed"
    SHIPPED = "shipped"
    INVOICED = "invoiced"
    DONE = "done"
    CANCELLED = "cancelled"


class SalesOrderLine(CanonicalModel):
    line_no: int | None = None
    product_code: NonEmptyStr
    description: str | None = None
    quantity: Quantity
    unit_price: Money | None = None
    discount_percent: Percent | None = None


class SalesOrder(_Priced, Entity):
    parents: ClassVar[dict[str, str]] = {"account_id": "Account"}

    account_id: NonEmptyStr
    order_number: str | None = Field(None, description="The ERP's order number.")
    opportunity_id: str | None = None
    order_date: dt.date | None = None
    status: OrderStatus = OrderStatus.DRAFT
    currency: CurrencyCode | None = None
    total_amount: Money | None = None
    billing_address: Address | None = None
    shipping_address: Address | None = None
    lines: list[SalesOrderLine] = Field(default_factory=list)


class InvoiceStatus(enum.StrEnum):
    DRAFT = "draft"
    POSTED = "posted"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    CANCELLED = "cancelled"


class InvoiceLine(CanonicalModel):
    line_no: int | None = None
    product_code: str | None = None
    description: str | None = None
    quantity: Quantity
    unit_price: Money | None = None


class Invoice(_Priced, Entity):
    parents: ClassVar[dict[str, str]] = {"account_id": "Account"}

    account_id: NonEmptyStr
    invoice_number: NonEmptyStr
    sales_order_id: str | None = None
    invoice_date: dt.date | None = None
    due_date: dt.date | None = None
    status: InvoiceStatus = InvoiceStatus.POSTED
    currency: CurrencyCode | None = None
    total_amount: Money | None = None
    tax_amount: Money | None = None
    amount_due: Money | None = None
    lines: list[InvoiceLine] = Field(default_factory=list)


class Payment(_Priced, Entity):
    parents: ClassVar[dict[str, str]] = {"account_id": "Account"}

    account_id: NonEmptyStr
    invoice_id: str | None = None
    amount: Money
    currency: CurrencyCode | None = None
    payment_date: dt.date | None = None
    method: str | None = None
    reference: str | None = None



"""Organisations and people: Address, Account, Contact."""

from __future__ import annotations

__all__ = ["Address", "AccountType", "AccountStatus", "Account", "Contact"]

import enum
from typing import ClassVar

from pydantic import Field

from crm2erp.schemas.base import CanonicalModel, Entity
from crm2erp.schemas.types import CountryCode, CurrencyCode, Email, Money, NonEmptyStr, Phone


class Address(CanonicalModel):
    street: str | None = None
    street2: str | None = None
    postal_code: str | None = None
    city: str | None = None
    region: str | None = Field(None, description="State, province or county.")
    country: CountryCode | None = None


class AccountType(enum.StrEnum):
    CUSTOMER = "customer"
    PROSPECT = "prospect"
    PARTNER = "partner"


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    BLOCKED = "blocked"


class Account(Entity):
    """An organisation: a customer, a prospect or a partner."""

    name: NonEmptyStr
    type: AccountType = AccountType.CUSTOMER
    status: AccountStatus = AccountStatus.ACTIVE
    legal_name: str | None = None
    tax_id: str | None = Field(None, description="VAT or other tax id, as printed.")
    customer_number: str | None = Field(None, description="The ERP's customer number.")
    email: Email | None = None
    phone: Phone | None = None
    website: str | None = None
    industry: str | None = None
    billing_address: Address | None = None
    shipping_address: Address | None = None
    currency: CurrencyCode | None = None
    credit_limit: Money | None = None
    balance: Money | None = Field(None, description="Outstanding balance, in `currency`.")
    payment_terms: str | None = None
    owner: str | None = None


class Contact(Entity):
    """A person, usually working for an account."""

    parents: ClassVar[dict[str, str]] = {"account_id": "Account"}

    account_id: str | None = None
    first_name: str | None = None
    last_name: NonEmptyStr
    email: Email | None = None
    phone: Phone | None = None
    mobile: Phone | None = None
    title: str | None = None
    address: Address | None = None

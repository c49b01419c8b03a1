"""Planning entities: what the CRM's pipeline tells the ERP's demand planning.

A :class:`ForecastLine` is the expected demand of one product in one period,
computed by the engine from open opportunities (see ``docs/forecast.md``):
the ERP's planning (Tryton's stock forecasts, SAP's planned independent
requirements) turns it into purchase or production proposals.
"""

from __future__ import annotations

__all__ = ["ForecastLine"]

import datetime as dt

from pydantic import Field, field_validator

from crm2erp.schemas.base import Entity
from crm2erp.schemas.types import NonEmptyStr, Quantity


class ForecastLine(Entity):
    """Expected demand of one product in one month (a sum over many deals)."""

    product_code: NonEmptyStr = Field(description="Product code shared by CRM and ERP (sku).")
    period: dt.date = Field(description="First day of the month the demand falls in.")
    quantity: Quantity = Field(ge=0, description=(
        "Expected quantity, in `uom`. Zero clears a plan line written by an earlier run."))
    uom: str | None = Field(None, description=(
        "Unit of measure; none means the product's default unit in the ERP."))
    warehouse: str | None = Field(None, description=(
        "Warehouse (or plant) code the demand is planned for; none means the ERP's default."))

    @field_validator("period")
    @classmethod
    def _first_of_month(cls, value: dt.date) -> dt.date:
        if value.day != 1:
            raise ValueError(f"period {value.isoformat()} must be the first day of its month "
                             f"({value.replace(day=1).isoformat()})")
        return value

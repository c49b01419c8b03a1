"""Tryton connection settings (what users write in ``connections.yaml``).

Example::

    type: tryton
    url: http://erp.example.com:8000
    database: production
    username: crm2erp
    password: ${TRYTON_PASSWORD}
    company: 1                    # optional: the user's current company otherwise
    product_defaults: {category: Goods, uom: Unit}

Transport settings (``timeout``, ``retry``, ``rate_limit``, ``verify_tls``,
``ca_bundle``) are the same as for every HTTP connector.
"""

from __future__ import annotations

__all__ = ["TrytonConfig", "ProductDefaults", "PartyOptions", "ForecastOptions"]

from typing import Any, Literal

from pydantic import Field, SecretStr

from crm2erp.connectors.base import ConnectorConfig
from crm2erp.connectors.toolkit.config import StrictModel, web_url
from crm2erp.http.config import HttpSettings, RateLimitConfig, RetryConfig, TimeoutConfig

TrytonUrl = web_url("http://host:8000")  # (the trytond web listener)


class ProductDefaults(StrictModel):
    """Values for products the CRM does not describe fully (Tryton requires them)."""

    category: str | None = Field(
        None, description="name of the account category of new products (revenue account)")
    uom: str = Field("Unit", description="name or symbol of the default unit of measure")
    type: Literal["goods", "service", "assets"] = "goods"


class PartyOptions(StrictModel):
    """How parties are matched (``key_field``) and how their children are replaced."""

    key_field: str = Field("code", pattern=r"^[a-z_][a-z0-9_]*$")
    replace_contact_mechanisms: Literal["owned", "all", "add"] = Field("owned", description=(
        "phones, e-mails, addresses and relations the CRM no longer sends: owned archives "
        "the ones this connection's user created, all archives every one, add keeps them "
        "(a row's own replace_contact_mechanisms field wins)"))


class ForecastOptions(StrictModel):
    """Where the ``forecasts`` stream plans demand (module ``stock_forecast``)."""

    warehouse: str | None = Field(None, description=(
        "code of the warehouse location for rows without one; default: the only warehouse"))
    destination: str | None = Field(None, description=(
        "code of the customer location demand goes to; default: the only customer location"))
    confirm: bool = Field(True, description=(
        "confirm the forecast documents: only done forecasts count for Tryton's planning"))


class TrytonConfig(ConnectorConfig):
    """Settings of one Tryton server connection (JSON-RPC)."""

    type: Literal["tryton"] | None = None
    url: TrytonUrl = Field(description="base URL of trytond, e.g. http://localhost:8000")
    database: str = Field(min_length=1)
    username: str = Field(min_length=1)
    password: SecretStr
    language: str = "en"
    company: int | None = Field(None, ge=1, description="company id; default: user's company")
    context: dict[str, Any] = Field(default_factory=dict,
                                    description="extra context sent with every call")
    page_size: int = Field(500, ge=1, le=10_000)
    write_batch_size: int = Field(100, ge=1, le=1000)
    confirm_sales: bool = Field(True, description="quote and confirm new sales")
    party: PartyOptions = Field(default_factory=PartyOptions)
    product_defaults: ProductDefaults = Field(default_factory=ProductDefaults)
    forecasts: ForecastOptions = Field(default_factory=ForecastOptions)
    timeout: TimeoutConfig = Field(default_factory=TimeoutConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    rate_limit: RateLimitConfig | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None

    @property
    def rpc_url(self) -> str:
        """The JSON-RPC endpoint of the database (``/<db>/rpc/`` in trytond >= 7)."""
        return f"{self.url}/{self.database}/rpc/"

    def http_settings(self) -> HttpSettings:
        return HttpSettings(timeout=self.timeout, retry=self.retry, rate_limit=self.rate_limit,
                            verify_tls=self.verify_tls, ca_bundle=self.ca_bundle)

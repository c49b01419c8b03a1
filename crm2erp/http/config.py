"""Configuration models shared by every HTTP connector.

A connector's config subclasses :class:`HttpConnectionConfig` and so accepts,
in ``connections.yaml``, the same ``auth``, ``timeout``, ``retry``,
``rate_limit``, ``verify_tls`` and ``ca_bundle`` keys as every other HTTP
connector. Secrets are :class:`pydantic.SecretStr` so they never show up in a
``repr`` or a validation error.
"""

from __future__ import annotations

__all__ = [
    "TimeoutConfig",
    "RetryConfig",
    "RateLimitConfig",
    "HttpSettings",
    "NoAuthConfig",
    "BearerAuthConfig",
    "ApiKeyAuthConfig",
    "BasicAuthConfig",
    "ClientCredentialsAuthConfig",
    "JwtBearerAuthConfig",
    "SessionLoginAuthConfig",
    "AuthConfig",
    "HttpConnectionConfig",
]

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from crm2erp.contract import ConnectorConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TimeoutConfig(_Strict):
    """Seconds to wait for a connection and for each read from the socket."""

    connect: float = Field(10.0, gt=0)
    read: float = Field(60.0, gt=0)


class RetryConfig(_Strict):
    """How transient failures (429, 5xx, dropped connections, cut bodies) are retried.

    The wait before attempt *n* is drawn uniformly from
    ``[0, min(backoff_max, backoff_base * 2**(n-1))]`` ("full jitter"), unless
    the server sent ``Retry-After``, which is honoured as given. A server that
    asks to wait longer than ``max_retry_after`` makes the call fail at once
    with a RetriableError so the engine can reschedule the whole run.
    """

    max_attempts: int = Field(6, ge=1, le=100)
    backoff_base: float = Field(0.5, ge=0)
    backoff_max: float = Field(60.0, ge=0)
    max_retry_after: float = Field(300.0, ge=0)


class RateLimitConfig(_Strict):
    """Client-side token bucket: sustained rate and the burst allowed above it."""

    requests_per_second: float = Field(gt=0)
    burst: int = Field(1, ge=1)


class HttpSettings(_Strict):
    """Transport settings of one connection (everything but auth)."""

    timeout: TimeoutConfig = Field(default_factory=TimeoutConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    rate_limit: RateLimitConfig | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    user_agent: str = "crm2erp"


# -- auth -------------------------------------------------------------------

class NoAuthConfig(_Strict):
    type: Literal["none"] = "none"


class BearerAuthConfig(_Strict):
    """A fixed bearer token sent as ``Authorization: Bearer <token>``."""

    type: Literal["bearer"]
    token: SecretStr


class ApiKeyAuthConfig(_Strict):
    """An API key sent in a header, e.g. ``X-API-Key: <key>`` (``prefix`` is prepended)."""

    type: Literal["api_key"]
    key: SecretStr
    header: str = "X-API-Key"
    prefix: str = ""


class BasicAuthConfig(_Strict):
    type: Literal["basic"]
    username: str
    password: SecretStr


class ClientCredentialsAuthConfig(_Strict):
    """OAuth2 client credentials grant (RFC 6749 section 4.4).

    ``token_url`` may be left out when the connector knows its default
    (Salesforce: ``<instance_url>/services/oauth2/token``).
    """

    type: Literal["client_credentials"]
    client_id: str
    client_secret: SecretStr
    token_url: str | None = None
    scope: str | None = None


class JwtBearerAuthConfig(_Strict):
    """OAuth2 JWT bearer grant (RFC 7523) signed with RS256.

    ``client_id`` is the issuer, ``subject`` the user the integration acts as,
    ``audience`` the authorization server (Salesforce:
    ``https://login.salesforce.com`` or ``https://test.salesforce.com``). The
    private key is given inline (PEM) or as a file path.
    """

    type: Literal["jwt_bearer"]
    client_id: str
    subject: str
    audience: str | None = None
    private_key: SecretStr | None = None
    private_key_file: str | None = None
    token_url: str | None = None
    lifetime_seconds: int = Field(180, ge=30, le=3600)

    @model_validator(mode="after")
    def _one_key(self) -> JwtBearerAuthConfig:
        if (self.private_key is None) == (self.private_key_file is None):
            raise ValueError("give exactly one of private_key (PEM text) or private_key_file")
        return self


class SessionLoginAuthConfig(_Strict):
    """Log in with username/password to get a session token, then send it in a header.

    The login is a JSON POST of ``{username_field: ..., password_field: ...}``
    to ``login_url``; ``token_path`` (dotted) picks the token from the reply.
    """

    type: Literal["session_login"]
    login_url: str
    username: str
    password: SecretStr
    username_field: str = "username"
    password_field: str = "password"
    token_path: str = "token"
    header: str = "Authorization"
    prefix: str = "Bearer "
    lifetime_seconds: int = Field(1800, ge=30)


AuthConfig = Annotated[
    NoAuthConfig | BearerAuthConfig | ApiKeyAuthConfig | BasicAuthConfig
    | ClientCredentialsAuthConfig | JwtBearerAuthConfig | SessionLoginAuthConfig,
    Field(discriminator="type"),
]


class HttpConnectionConfig(ConnectorConfig):
    """Base of HTTP connector configs: auth plus the transport settings."""

    auth: AuthConfig = Field(default_factory=NoAuthConfig)
    timeout: TimeoutConfig = Field(default_factory=TimeoutConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    rate_limit: RateLimitConfig | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None

    def http_settings(self) -> HttpSettings:
        return HttpSettings(timeout=self.timeout, retry=self.retry, rate_limit=self.rate_limit,
                            verify_tls=self.verify_tls, ca_bundle=self.ca_bundle)

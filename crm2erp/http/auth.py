"""Authentication strategies for :class:`crm2erp.http.client.HttpClient`.

Each strategy adds its headers to an outgoing request. Token-based ones
(OAuth2 client credentials, JWT bearer, session login) fetch a token on first
use, cache it until shortly before it expires, and drop it when the API
answers 401 so the client can fetch a fresh one exactly once. Every secret
and every token is registered with :func:`crm2erp.redact.register_secret`,
so it is masked if it ever reaches a log line or an error message.
"""

from __future__ import annotations

__all__ = [
    "Auth",
    "NoAuth",
    "HeaderAuth",
    "BasicAuth",
    "TokenAuth",
    "ClientCredentialsAuth",
    "JwtBearerAuth",
    "SessionLoginAuth",
    "build_auth",
]

import base64
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from crm2erp.errors import ConfigError, FatalError
from crm2erp.http import config as cfg
from crm2erp.redact import redact, register_secret

log = logging.getLogger(__name__)
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class HttpClient(Protocol):
    """What a strategy needs from :class:`crm2erp.http.client.HttpClient` (which
    imports this module): one call, optionally without credentials."""

    def request(self, method: str, url: str, *, json: Any = None, data: Any = None,
                authenticate: bool = True) -> Any: ...


class Auth:
    """No-op base; ``refreshable`` says whether a 401 is worth one more try."""

    refreshable = False

    def apply(self, headers: dict[str, str], client: HttpClient) -> None:
        """Add credentials to ``headers`` (may fetch a token through ``client``)."""

    def invalidate(self) -> None:
        """Forget a cached token (called after a 401)."""


class NoAuth(Auth):
    pass


class HeaderAuth(Auth):
    """A fixed header: bearer tokens and API keys."""

    def __init__(self, header: str, value: str, secret: str):
        register_secret(secret)
        self.header, self.value = header, value

    def apply(self, headers, client):
        headers[self.header] = self.value


class BasicAuth(HeaderAuth):
    def __init__(self, username: str, password: str):
        register_secret(password)
        raw = base64.b64encode(f"{username}:{password}".encode()).decode()
        super().__init__("Authorization", f"Basic {raw}", raw)


class TokenAuth(Auth):
    """A token fetched on demand and cached until ``expires_in`` (minus a margin)."""

    refreshable = True
    margin = 30.0  # refresh this many seconds before the token expires

    def __init__(self, header: str = "Authorization", prefix: str = "Bearer "):
        self.header, self.prefix = header, prefix
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.token_info: dict[str, Any] = {}
        self.fetches = 0

    def fetch(self, client: HttpClient) -> tuple[str, float | None]:
        """Return ``(token, lifetime_seconds or None)``; subclasses implement."""
        raise NotImplementedError

    def token(self, client: HttpClient) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                token, lifetime = self.fetch(client)
                register_secret(token)
                self.fetches += 1
                self._token = token
                self._expires_at = time.monotonic() + max(
                    0.0, (lifetime if lifetime is not None else 3600.0) - self.margin)
            return self._token

    def apply(self, headers, client):
        headers[self.header] = f"{self.prefix}{self.token(client)}"

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _post_token(self, client: HttpClient, url: str, form: dict[str, str],
                    what: str) -> dict[str, Any]:
        response = client.request("POST", url, data=form, authenticate=False,
                                  headers={"Accept": "application/json"})
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict) \
                or "access_token" not in body:
            reason = body.get("error_description") or body.get("error") \
                if isinstance(body, dict) else None
            raise FatalError(redact(
                f"{what}: the token endpoint {url} refused the credentials "
                f"(HTTP {response.status_code}: {reason or response.text[:200]}); "
                "check client id, secret/key and that the app is approved for this user"))
        self.token_info = {k: v for k, v in body.items() if k != "access_token"}
        return body


class ClientCredentialsAuth(TokenAuth):
    def __init__(self, conf: cfg.ClientCredentialsAuthConfig, token_url: str):
        super().__init__()
        self.conf, self.token_url = conf, token_url
        register_secret(conf.client_secret.get_secret_value())

    def fetch(self, client):
        form = {"grant_type": "client_credentials", "client_id": self.conf.client_id,
                "client_secret": self.conf.client_secret.get_secret_value()}
        if self.conf.scope:
            form["scope"] = self.conf.scope
        body = self._post_token(client, self.token_url, form, "OAuth2 client credentials")
        return body["access_token"], _lifetime(body)


class JwtBearerAuth(TokenAuth):
    def __init__(self, conf: cfg.JwtBearerAuthConfig, token_url: str, audience: str):
        super().__init__()
        self.conf, self.token_url, self.audience = conf, token_url, audience
        if conf.private_key is not None:
            self._key = conf.private_key.get_secret_value()
        else:
            path = Path(conf.private_key_file or "")
            try:
                self._key = path.read_text()
            except OSError as exc:
                raise ConfigError(f"JWT bearer auth: cannot read private_key_file {path}: "
                                  f"{exc.strerror}; give the path of a PEM RSA key") from None
        register_secret(self._key)

    def assertion(self) -> str:
        import jwt  # PyJWT; imported here so plain API-key users need no crypto at import

        now = int(time.time())
        claims = {"iss": self.conf.client_id, "sub": self.conf.subject, "aud": self.audience,
                  "iat": now, "exp": now + self.conf.lifetime_seconds, "jti": uuid.uuid4().hex}
        try:
            return jwt.encode(claims, self._key, algorithm="RS256")
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"JWT bearer auth: the private key is not a usable RSA key "
                              f"({type(exc).__name__}); give a PEM 'BEGIN PRIVATE KEY' block"
                              ) from None

    def fetch(self, client):
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": self.assertion()}
        body = self._post_token(client, self.token_url, form, "OAuth2 JWT bearer")
        return body["access_token"], _lifetime(body)


class SessionLoginAuth(TokenAuth):
    def __init__(self, conf: cfg.SessionLoginAuthConfig):
        super().__init__(conf.header, conf.prefix)
        self.conf = conf
        register_secret(conf.password.get_secret_value())

    def fetch(self, client):
        payload = {self.conf.username_field: self.conf.username,
                   self.conf.password_field: self.conf.password.get_secret_value()}
        response = client.request("POST", self.conf.login_url, json=payload, authenticate=False)
        token: Any = response.json() if response.status_code == 200 else None
        for part in self.conf.token_path.split("."):
            token = token.get(part) if isinstance(token, dict) else None
        if response.status_code != 200 or not isinstance(token, str):
            raise FatalError(f"session login to {self.conf.login_url} as {self.conf.username!r} "
                             f"failed (HTTP {response.status_code}); check username/password "
                             f"and token_path {self.conf.token_path!r}")
        return token, float(self.conf.lifetime_seconds)


def _lifetime(body: dict[str, Any]) -> float | None:
    try:
        return float(body["expires_in"])
    except (KeyError, TypeError, ValueError):
        return None  # Salesforce sends no expires_in: keep it until a 401 says otherwise


def build_auth(conf: Any, *, default_token_url: str | None = None,
               default_audience: str | None = None) -> Auth:
    """Build the strategy for an auth config model (see :data:`config.AuthConfig`)."""
    if conf is None or isinstance(conf, cfg.NoAuthConfig):
        return NoAuth()
    if isinstance(conf, cfg.BearerAuthConfig):
        token = conf.token.get_secret_value()
        return HeaderAuth("Authorization", f"Bearer {token}", token)
    if isinstance(conf, cfg.ApiKeyAuthConfig):
        key = conf.key.get_secret_value()
        return HeaderAuth(conf.header, f"{conf.prefix}{key}", key)
    if isinstance(conf, cfg.BasicAuthConfig):
        return BasicAuth(conf.username, conf.password.get_secret_value())
    if isinstance(conf, cfg.SessionLoginAuthConfig):
        return SessionLoginAuth(conf)
    if isinstance(conf, cfg.ClientCredentialsAuthConfig | cfg.JwtBearerAuthConfig):
        token_url = conf.token_url or default_token_url
        if not token_url:
            raise ConfigError(f"auth type {conf.type}: token_url is required")
        if isinstance(conf, cfg.ClientCredentialsAuthConfig):
            return ClientCredentialsAuth(conf, token_url)
        audience = conf.audience or default_audience
        if not audience:
            raise ConfigError("auth type jwt_bearer: audience is required")
        return JwtBearerAuth(conf, token_url, audience)
    raise ConfigError(f"unsupported auth config {type(conf).__name__}")

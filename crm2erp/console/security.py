"""The console's protections: security headers on every response, HTTP basic auth,
and who acts (the basic-auth user, else the OS user)."""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.requests import Request
from starlette.responses import PlainTextResponse

SECURITY_HEADERS = [
    # only the console's own script file runs (no inline script: injected markup cannot),
    # nothing loads from elsewhere, no framing (clickjacking)
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; "
                                 b"img-src 'self'; "
                                 b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


class BasicAuth:
    """HTTP basic auth on every request: any user name, the configured password."""

    def __init__(self, app, password: str):
        self.app, self.password = app, password.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not self._ok(dict(scope["headers"])):
            response = PlainTextResponse("a password is required", status_code=401,
                                         headers={"WWW-Authenticate":
                                                  'Basic realm="crm2erp console"'})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _ok(self, headers: dict[bytes, bytes]) -> bool:
        kind, _, value = headers.get(b"authorization", b"").partition(b" ")
        if kind.lower() != b"basic":
            return False
        try:
            _user, _, given = base64.b64decode(value, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self.password)


def _who(request: Request) -> str:
    """Who acts: the basic-auth user name, else the OS user (as the CLI records)."""
    from crm2erp.quality.dedupe.review import who as os_user

    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            user = base64.b64decode(header[6:]).decode().partition(":")[0]
        except (binascii.Error, ValueError):
            user = ""
        if user:
            return user
    return os_user(None)

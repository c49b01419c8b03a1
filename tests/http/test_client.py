"""HttpClient against a real loopback server: retries, Retry-After, auth refresh, errors."""

from __future__ import annotations

import logging

import pytest
import requests

from crm2erp.errors import FatalError, RetriableError
from crm2erp.http import HttpClient, HttpSettings, build_auth
from crm2erp.http.config import BearerAuthConfig, ClientCredentialsAuthConfig

FAST = {"retry": {"max_attempts": 4, "backoff_base": 0.001, "backoff_max": 0.002}}


def client(app, auth=None, **settings) -> HttpClient:
    sleeps: list[float] = []
    c = HttpClient(HttpSettings.model_validate({**FAST, **settings}), base_url=app.base_url,
                   auth=auth, sleep=sleeps.append)
    c.slept = sleeps
    return c


def test_retries_429_and_5xx_then_succeeds_honouring_retry_after(scripted):
    scripted.on("/items", 429, {"e": 1}, {"Retry-After": "3"})
    scripted.on("/items", 503, {"e": 2})
    scripted.on("/items", 502, {"e": 3})
    scripted.on("/items", 200, {"ok": True})
    c = client(scripted)
    resp = c.request("GET", "/items")
    assert resp.json() == {"ok": True}
    assert c.slept[0] == 3.0  # Retry-After honoured exactly
    assert all(0 <= s <= 0.002 for s in c.slept[1:])  # then jittered backoff
    assert (c.stats.attempts, c.stats.calls, c.stats.retries) == (4, 1, 3)


def test_truncated_json_body_is_retried(scripted):
    scripted.on("/items", 200, b'{"records": [1, 2')
    scripted.on("/items", 200, {"records": [1, 2]})
    assert client(scripted).request("GET", "/items").json() == {"records": [1, 2]}
    assert len(scripted.calls("/items")) == 2


def test_exhausted_retries_raise_retriable_error(scripted):
    scripted.on("/items", 500, {"e": "boom"})
    c = client(scripted)
    with pytest.raises(RetriableError, match="still failing after 4 attempts"):
        c.request("GET", "/items")
    assert c.stats.attempts == 4


def test_retry_after_beyond_the_maximum_fails_fast(scripted):
    scripted.on("/items", 503, {"e": 1}, {"Retry-After": "7200"})
    c = client(scripted)
    with pytest.raises(RetriableError) as err:
        c.request("GET", "/items")
    assert err.value.retry_after == 7200.0 and c.stats.attempts == 1


def test_connection_refused_is_retried_then_retriable():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = HttpClient(HttpSettings.model_validate(FAST), base_url=f"http://127.0.0.1:{port}",
                   sleep=lambda s: None)
    with pytest.raises(RetriableError, match="ConnectionError"):
        c.request("GET", "/x")
    assert c.stats.attempts == 4


def test_other_4xx_is_returned_for_the_connector_to_map(scripted):
    scripted.on("/items", 422, {"detail": "bad email"})
    resp = client(scripted).request("GET", "/items")
    assert resp.status_code == 422 and resp.json() == {"detail": "bad email"}


def test_error_mapper_claims_responses_first(scripted):
    scripted.on("/items", 409, {"code": "LOCKED"})
    scripted.on("/items", 200, {"ok": 1})
    c = client(scripted)
    c.error_mapper = lambda r: RetriableError("locked", retry_after=0) if r.status_code == 409 \
        else None
    assert c.request("GET", "/items").json() == {"ok": 1}
    c.error_mapper = lambda r: FatalError("mapped")
    scripted.on("/other", 400, {"x": 1})
    with pytest.raises(FatalError, match="mapped"):
        c.request("GET", "/other")


def test_401_refreshes_token_once_then_fatal(scripted):
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    scripted.handle("/token", lambda r: (200, {"access_token": next(tokens),
                                               "expires_in": 3600}, {}))
    auth = build_auth(ClientCredentialsAuthConfig(
        type="client_credentials", client_id="id", client_secret="s3cret-value"),
        default_token_url=f"{scripted.base_url}/token")
    # first token is rejected, the refreshed one works
    scripted.handle("/data", lambda r: (200, {"ok": 1}, {})
                    if r["headers"].get("Authorization") == "Bearer tok-2"
                    else (401, {"e": "expired"}, {}))
    c = client(scripted, auth=auth)
    assert c.request("GET", "/data").json() == {"ok": 1}
    assert c.request("GET", "/data").json() == {"ok": 1}  # cached token reused
    assert auth.fetches == 2
    token_form = scripted.calls("/token")[0]["body"].decode()
    assert "grant_type=client_credentials" in token_form
    assert "client_secret=s3cret-value" in token_form
    # a user who is refused even with a fresh token: FatalError after one refresh
    scripted.handle("/data", lambda r: (403, {"e": "no access"}, {}))
    with pytest.raises(FatalError, match="HTTP 403"):
        c.request("GET", "/data")
    assert auth.fetches == 3


def test_static_bearer_is_not_refreshed(scripted):
    scripted.on("/data", 401, {"e": "bad"})
    c = client(scripted, auth=build_auth(BearerAuthConfig(type="bearer", token="abcd1234")))
    with pytest.raises(FatalError, match="credentials"):
        c.request("GET", "/data")
    assert scripted.calls("/data")[0]["headers"]["Authorization"] == "Bearer abcd1234"
    assert len(scripted.calls("/data")) == 1


def test_secrets_never_reach_logs_or_errors(scripted, caplog):
    scripted.handle("/token", lambda r: (400, {"error": "invalid_client",
                                               "error_description": "bad secret-XYZ-123"}, {}))
    auth = build_auth(ClientCredentialsAuthConfig(
        type="client_credentials", client_id="id", client_secret="secret-XYZ-123"),
        default_token_url=f"{scripted.base_url}/token")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FatalError) as err:
        client(scripted, auth=auth).request("GET", "/data")
    assert "secret-XYZ-123" not in str(err.value)
    assert "refused the credentials" in str(err.value)
    assert "secret-XYZ-123" not in caplog.text


def test_rate_limit_paces_requests(scripted):
    scripted.on("/items", 200, {"ok": 1})
    c = client(scripted, rate_limit={"requests_per_second": 5, "burst": 2})
    for _ in range(4):
        c.request("GET", "/items")
    # burst of 2 goes at once; the 3rd and 4th are due 0.2 s and 0.4 s after the start
    assert len(c.slept) == 2
    assert 0 < c.slept[0] <= 0.2 < c.slept[1] <= 0.4


def test_tls_verification_settings():
    from crm2erp.http.client import make_session

    assert make_session(HttpSettings()).verify is True
    assert make_session(HttpSettings(ca_bundle="/etc/ssl/corp.pem")).verify == "/etc/ssl/corp.pem"
    assert make_session(HttpSettings(verify_tls=False)).verify is False


def test_timeouts_are_passed(scripted, monkeypatch):
    seen = {}
    original = requests.Session.request

    def spy(self, method, url, **kw):
        seen["timeout"] = kw["timeout"]
        return original(self, method, url, **kw)

    monkeypatch.setattr(requests.Session, "request", spy)
    scripted.on("/items", 200, {"ok": 1})
    client(scripted, timeout={"connect": 2, "read": 9}).request("GET", "/items")
    assert seen["timeout"] == (2, 9)


def test_single_attempt_sends_once_through_the_same_session_limiter_and_stats(scripted):
    scripted.on("/orders", 503, {"e": "busy"})
    c = client(scripted, rate_limit={"requests_per_second": 1000, "burst": 5})
    once = c.single_attempt()
    assert (once.session, once.limiter, once.stats) == (c.session, c.limiter, c.stats)
    with pytest.raises(RetriableError, match="still failing after 1 attempts"):
        once.request("POST", "/orders", json={"n": 1})
    assert len(scripted.calls("/orders")) == 1 and c.slept == []
    assert (c.stats.attempts, c.stats.calls, c.stats.by_status[503]) == (1, 1, 1)
    with pytest.raises(RetriableError, match="still failing after 4 attempts"):
        c.request("POST", "/orders", json={"n": 1})   # the client itself still retries
    assert len(scripted.calls("/orders")) == 5

"""The HTTP client every API connector sends its calls through.

One place implements the rules that keep a sync honest over a flaky network:

* timeouts on connect and read, TLS verification on (a CA bundle can be given;
  turning verification off is allowed only explicitly and is logged loudly);
* a client-side token bucket per connection;
* retries with full-jitter exponential backoff on 429, 5xx, dropped
  connections and cut bodies (a 200 whose JSON does not parse), honouring
  ``Retry-After``; exhaustion raises :class:`~crm2erp.errors.RetriableError`;
* one token refresh on 401/403, then :class:`~crm2erp.errors.FatalError`;
* other 4xx responses are returned, for the connector to map to its own
  errors (an ``error_mapper`` may also claim any >= 400 response first);
* counters (:class:`RequestStats`) for tests and benchmarks.
"""

from __future__ import annotations

__all__ = ["RequestStats", "HttpClient", "make_session", "decode_json"]

import copy
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from crm2erp.errors import FatalError, RetriableError
from crm2erp.http.auth import Auth, NoAuth
from crm2erp.http.config import HttpSettings
from crm2erp.http.ratelimit import TokenBucket
from crm2erp.http.retry import backoff_delay, parse_retry_after
from crm2erp.redact import redact

log = logging.getLogger(__name__)
_TRANSIENT_EXC = (requests.ConnectionError, requests.Timeout,
                  requests.exceptions.ChunkedEncodingError,
                  requests.exceptions.ContentDecodingError)

ErrorMapper = Callable[[requests.Response], Exception | None]
Validator = Callable[[requests.Response], None]


@dataclass
class RequestStats:
    """What one client sent: every attempt, and the calls that got a final answer."""

    attempts: int = 0          # HTTP requests actually sent (retries included)
    calls: int = 0             # logical calls that returned a response
    retries: int = 0
    auth_calls: int = 0        # calls made without auth (token endpoints)
    by_status: Counter = field(default_factory=Counter)
    waits: list[float] = field(default_factory=list)  # seconds slept before retries

    def reset(self) -> None:
        self.__init__()


def make_session(settings: HttpSettings) -> requests.Session:
    """A :class:`requests.Session` with TLS verification set from ``settings``."""
    session = requests.Session()
    session.headers["User-Agent"] = settings.user_agent
    if not settings.verify_tls:
        log.warning("TLS certificate verification is OFF for this connection "
                    "(verify_tls: false); use ca_bundle for private CAs instead")
        session.verify = False
    elif settings.ca_bundle:
        session.verify = settings.ca_bundle
    else:
        session.verify = True
    return session


class HttpClient:
    """Sends requests relative to ``base_url`` with auth, rate limit and retries."""

    def __init__(self, settings: HttpSettings | None = None, *, base_url: str = "",
                 auth: Auth | None = None, error_mapper: ErrorMapper | None = None,
                 name: str = "http", rng: random.Random | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.settings = settings or HttpSettings()
        self.base_url = base_url.rstrip("/") + "/" if base_url else ""
        self.auth = auth or NoAuth()
        self.error_mapper = error_mapper
        self.name = name
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.session = make_session(self.settings)
        rl = self.settings.rate_limit
        self.limiter = TokenBucket(rl.requests_per_second, rl.burst, sleep=sleep) if rl else None
        self.stats = RequestStats()
        self._stats_lock = threading.Lock()
        self.last_response: requests.Response | None = None

    def url(self, url: str) -> str:
        return urljoin(self.base_url, url.lstrip("/")) if self.base_url else url

    def close(self) -> None:
        self.session.close()

    def single_attempt(self) -> HttpClient:
        """This client for non-idempotent writes: one attempt, no retry.

        It shares this client's session (cookies, CSRF tokens), auth, rate limiter
        and :attr:`stats`, so a write counts and paces like every other call.
        """
        once = copy.copy(self)
        once.settings = self.settings.model_copy(update={
            "retry": self.settings.retry.model_copy(update={"max_attempts": 1})})
        return once

    # ------------------------------------------------------------------
    def request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, data: Any = None, headers: Mapping[str, str] | None = None,
                expect_json: bool = True, authenticate: bool = True,
                validate: Validator | None = None) -> requests.Response:
        """Send one call, retrying transient failures; see the module docstring.

        ``validate`` may raise ``ValueError`` on a 2xx response it finds
        incomplete (a CSV page shorter than announced, say): that is retried
        like a cut body.
        """
        full = self.url(url)
        where = f"{self.name}: {method} {urlsplit(full).path}"
        retry = self.settings.retry
        timeout = (self.settings.timeout.connect, self.settings.timeout.read)
        refreshed = False
        problem, retry_after = "no attempt made", None
        for attempt in range(1, retry.max_attempts + 1):
            if attempt > 1:
                self.backoff(attempt - 1, retry_after, where)
            retry_after = None
            if self.limiter is not None:
                self.limiter.acquire()
            hdrs = dict(headers or {})
            if authenticate:
                self.auth.apply(hdrs, self)
            self._count(attempts=1)
            try:
                resp = self.session.request(method, full, params=params, json=json, data=data,
                                            headers=hdrs, timeout=timeout)
            except _TRANSIENT_EXC as exc:
                problem = f"{type(exc).__name__}: {exc}"
                log.info(redact(f"{where} attempt {attempt} failed: {problem}"))
                continue
            self.last_response = resp
            status = resp.status_code
            with self._stats_lock:
                self.stats.by_status[status] += 1
            if status >= 400 and self.error_mapper is not None:
                mapped = self.error_mapper(resp)
                if isinstance(mapped, RetriableError):
                    problem, retry_after = str(mapped), mapped.retry_after
                    continue
                if mapped is not None:
                    self._count(calls=1, auth_calls=0 if authenticate else 1)
                    raise mapped
            if status in (401, 403) and authenticate:
                if self.auth.refreshable and not refreshed:
                    log.info(f"{where} answered {status}; fetching a new token once")
                    self.auth.invalidate()
                    refreshed = True
                    continue
                self._count(calls=1)
                raise FatalError(redact(
                    f"{where} was refused with HTTP {status} ({_snippet(resp)}); check the "
                    "connection's credentials and the permissions of its user"))
            if status == 429 or status >= 500:
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                problem = f"HTTP {status} ({_snippet(resp)})"
                if retry_after is not None and retry_after > retry.max_retry_after:
                    self._count(calls=1)
                    raise RetriableError(f"{where}: server asked to wait {retry_after:.0f}s "
                                         f"(more than max_retry_after); try the run later",
                                         retry_after=retry_after)
                log.info(redact(f"{where} attempt {attempt}: {problem}"))
                continue
            if 200 <= status < 300:
                try:
                    if expect_json and status != 204 and resp.content:
                        resp.json()
                    if validate is not None:
                        validate(resp)
                except ValueError as exc:
                    problem = f"incomplete response body ({exc})"
                    log.info(f"{where} attempt {attempt}: {problem}")
                    continue
            self._count(calls=1, auth_calls=0 if authenticate else 1)
            return resp
        self._count(calls=1)
        raise RetriableError(redact(f"{where} still failing after {retry.max_attempts} attempts: "
                                    f"{problem}"), retry_after=retry_after)

    def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET and decode JSON; a 4xx that no mapper claimed becomes a FatalError."""
        resp = self.request("GET", url, **kwargs)
        if resp.status_code >= 400:
            raise FatalError(f"{self.name}: GET {urlsplit(resp.url).path} failed with HTTP "
                             f"{resp.status_code}: {_snippet(resp)}")
        return decode_json(resp)

    # ------------------------------------------------------------------
    def backoff(self, retry_number: int, retry_after: float | None = None,
                where: str = "") -> None:
        """Wait before retry number ``retry_number`` (1 = first) by this client's retry
        policy: ``retry_after`` seconds when the server asked, else full-jitter backoff.

        Connectors that retry a unit of work themselves (a ``$batch`` re-planned after a
        lost answer) call this, so every retry is paced, counted in :attr:`stats` and
        slept through the injectable ``sleep`` the same way.
        """
        r = self.settings.retry
        delay = retry_after if retry_after is not None else backoff_delay(
            retry_number, r.backoff_base, r.backoff_max, self.rng)
        with self._stats_lock:
            self.stats.retries += 1
            self.stats.waits.append(delay)
        if delay > 0:
            log.debug(f"{where or self.name}: waiting {delay:.2f}s before retry {retry_number}")
            self.sleep(delay)

    def _count(self, *, attempts: int = 0, calls: int = 0, auth_calls: int = 0) -> None:
        with self._stats_lock:
            self.stats.attempts += attempts
            self.stats.calls += calls
            self.stats.auth_calls += auth_calls


def decode_json(resp: requests.Response) -> Any:
    """Decode a JSON body keeping decimals exact (money must not become floats)."""
    from decimal import Decimal

    return json.loads(resp.content or b"null", parse_float=Decimal)


def _snippet(resp: requests.Response, limit: int = 300) -> str:
    text = resp.text.strip().replace("\n", " ")
    return redact(text[:limit] + ("..." if len(text) > limit else "")) or resp.reason or "no body"


"""Plumbing shared by the API emulators (``crm2erp.connectors.*.emulator``).

Each emulator speaks its own protocol (error bodies, auth, paging), but the
WSGI handling around it is the same everywhere: read the request, answer a
status with a JSON (or text) body, cut the body in half to simulate a broken
connection, and inject faults a test queued (:meth:`FaultInjection.fail_next`)
or drew at random from a seeded generator, so a fault run is reproducible.
"""

from __future__ import annotations

__all__ = ["Reply", "FaultInjection", "read_body", "query_fields", "form_fields",
           "status_line", "respond"]

import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

DEFAULT_FAULT_KINDS: tuple = (429, 503, 500, "truncate")


class Reply(Exception):
    """Raised inside a handler to answer at once with ``status``, ``body`` and ``headers``."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body (``b""`` when there is none)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


def query_fields(environ: dict[str, Any], *, keep_blank_values: bool = False) -> dict[str, str]:
    """The query string as a dict; a repeated parameter keeps its last value."""
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""),
                                          keep_blank_values=keep_blank_values).items()}


def form_fields(raw: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (OAuth token requests) as a dict."""
    return {k: v[-1] for k, v in parse_qs(raw.decode()).items()}


def status_line(status: int, *, upper: bool = False) -> str:
    """``"404 Not Found"`` (``upper``: ``"404 NOT FOUND"``, as Werkzeug/Odoo write it)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    return f"{status} {phrase.upper() if upper else phrase}"


def respond(start_response: Callable, status: int, payload: Any, headers: dict[str, str], *,
            json_type: str | None = "application/json",
            text_type: str = "text/plain; charset=utf-8", truncate: bool = False,
            upper: bool = False) -> list[bytes]:
    """Send ``payload`` and return the WSGI body.

    ``bytes``/``str`` go as they are (``text_type``), ``None`` as an empty body,
    anything else as JSON (``json_type``); a ``Content-Type`` already in
    ``headers`` wins. ``truncate`` sends half the body under the full
    ``Content-Length`` of the half: the client gets a cut, unparsable answer.
    """
    if isinstance(payload, bytes | str):
        data = payload.encode() if isinstance(payload, str) else payload
        headers.setdefault("Content-Type", text_type)
    else:
        data = b"" if payload is None else json.dumps(payload).encode()
        if json_type is not None:
            headers.setdefault("Content-Type", json_type)
    if truncate and len(data) > 1:
        data = data[: len(data) // 2]
    headers["Content-Length"] = str(len(data))
    start_response(status_line(status, upper=upper), list(headers.items()))
    return [data]


class FaultInjection:
    """Mixin: faults queued by a test or drawn at ``fault_rate``, slow answers, counters.

    The emulator calls :meth:`init_faults` in ``__init__`` (after creating its
    ``_lock``) and :meth:`take_fault` for every request it may fail; how a refusal
    looks on the wire (error body, ``Retry-After``) stays with the emulator.
    ``requests_served`` and ``faults_injected`` count what it saw.
    """

    _lock: threading.Lock | threading.RLock

    def init_faults(self, rng: random.Random, *, fault_rate: float = 0.0,
                    fault_kinds: tuple = DEFAULT_FAULT_KINDS, retry_after: int = 1,
                    slow_rate: float = 0.0, slow_seconds: float = 0.2) -> None:
        self.fault_rate, self.fault_kinds, self.retry_after = fault_rate, fault_kinds, retry_after
        self.slow_rate, self.slow_seconds = slow_rate, slow_seconds
        self.faults_injected = 0
        self.requests_served = 0
        self._fault_rng = rng
        self._queued: deque = deque()

    def fail_next(self, kind: int | str | Reply, times: int = 1, retry_after: int | None = None, *,
                  on: str | None = None) -> None:
        """Fail the next ``times`` requests (whose path contains ``on``, if given).

        ``kind`` is an HTTP status or ``"truncate"`` (the answer is cut AFTER the
        request was processed: for a write, the change is committed but the
        client cannot know it); :meth:`reply_next` queues a whole :class:`Reply`.
        """
        with self._lock:
            self._queued.extend([(kind, retry_after, on)] * times)

    def reply_next(self, status: int, body: Any, headers: dict[str, str] | None = None, *,
                   times: int = 1, on: str | None = None) -> None:
        """Answer the next ``times`` requests (whose path contains ``on``) with ``status``,
        ``body`` and ``headers`` instead of processing them: a vendor's documented error
        (or warning) answer, for a test of how the connector classifies it."""
        self.fail_next(Reply(status, body, dict(headers or {})), times, on=on)

    def clear_faults(self) -> None:
        with self._lock:
            self._queued.clear()

    @property
    def faults_pending(self) -> int:
        """Queued faults not yet served (tests check theirs was hit)."""
        return len(self._queued)

    def next_fault(self, where: str = "") -> tuple[int | str | Reply | None, int | None]:
        """``(kind, retry_after)`` of the fault for this request, ``(None, None)`` for none.

        A queued fault comes first; ``where`` (the request path) is matched
        against its ``on``. May sleep ``slow_seconds`` at ``slow_rate``.
        """
        with self._lock:
            queued = next((q for q in self._queued if q[2] is None or q[2] in where), None)
            if queued is not None:
                self._queued.remove(queued)
                kind, retry_after = queued[0], queued[1]
            elif self.fault_rate and self._fault_rng.random() < self.fault_rate:
                kind, retry_after = self._fault_rng.choice(self.fault_kinds), self.retry_after
            else:
                kind, retry_after = None, None
            slow = self.slow_rate and self._fault_rng.random() < self.slow_rate
            if kind is not None:
                self.faults_injected += 1
        if slow:
            time.sleep(self.slow_seconds)
        return kind, retry_after

    def retry_after_header(self, retry_after: int | None) -> str:
        """The ``Retry-After`` value: the queued fault's, else the emulator's default."""
        return str(retry_after if retry_after is not None else self.retry_after)

    def count_request(self) -> None:
        """One more request seen (``requests_served``)."""
        with self._lock:
            self.requests_served += 1

    def take_fault(self, where: str, refusal: Callable[[int, int | None], Reply]) -> bool:
        """Serve this request's fault, if one is queued or drawn.

        A refusal (an HTTP status) is raised before the request is processed, as
        ``refusal(status, retry_after)`` shapes it for the vendor; a queued
        :class:`Reply` is raised as it is. Returns True for ``"truncate"``: process the
        request, then cut the answer (committed, but the client cannot know it).
        """
        kind, retry_after = self.next_fault(where)
        if isinstance(kind, Reply):
            raise kind
        if kind is None or kind == "truncate":
            return kind == "truncate"
        raise refusal(int(kind), retry_after)

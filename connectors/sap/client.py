"""SAP Gateway specifics on top of the shared HTTP client: CSRF tokens, errors, paging, $batch.

SAP Gateway refuses every modifying request without a CSRF token that
belongs to the caller's session. The token is fetched with a ``GET`` carrying
``x-csrf-token: Fetch``; the answer sets session cookies (kept by the
``requests`` session) and returns the token in the same header. A write
refused with ``403`` and ``x-csrf-token: Required`` means the token expired or
the session was dropped: the token is fetched again once and the write
repeated. That refusal happens before any processing, so repeating is safe.

Refused reads become one line of text (SAP's code and messages, the
``innererror.errordetails`` included): a 400/404 (an unknown service, entity
set or property) is a :class:`ConfigError`, exit 2. Warnings SAP sends with a
successful answer in the ``sap-message`` header are logged and kept in
:attr:`SapClient.warnings`.

Writes go through a second client that shares the session (cookies) but
never retries on its own: a repeated ``POST`` whose first answer was lost
could create a record twice, so the writer decides (after re-reading).
"""

from __future__ import annotations

__all__ = ["CsrfRequired", "SapClient", "error_mapper", "note_sap_messages"]

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import requests

from crm2erp.connectors.sap.config import SapConfig, SapStreamConfig
from crm2erp.connectors.sap.odata import describe_error
from crm2erp.connectors.toolkit import odata_batch as batch
from crm2erp.connectors.toolkit.errors import quota_used_up, request_line
from crm2erp.connectors.toolkit.paging import paged_records
from crm2erp.errors import ConfigError, FatalError
from crm2erp.http import HttpClient, ODataPaginator, build_auth

log = logging.getLogger(__name__)


class CsrfRequired(Exception):
    """The server asked for a (new) CSRF token; handled inside :class:`SapClient`."""


def error_mapper(resp: requests.Response) -> Exception | None:
    """Claim what the generic client would misread: CSRF refusals, used-up quotas, and
    refused reads, whose SAP error body becomes text (code and messages)."""
    status = resp.status_code
    if status == 403 and resp.headers.get("x-csrf-token", "").lower() == "required":
        return CsrfRequired()
    if status == 429 and "quotaviolation" in resp.text.replace(" ", "").lower():
        return quota_used_up(
            "SAP", "the API quota of this communication arrangement is used up (HTTP 429 "
            "QuotaViolation from the API gateway)", " - run the flow again when the quota "
            "window resets, or ask the SAP Basis team to raise the quota.", error=FatalError)
    where = f"SAP: {request_line(resp)}"
    if not where.startswith("SAP: GET ") or status in (401, 429) or status >= 500:
        return None   # writes are sorted by the writer; the client retries or refreshes
    reason = describe_error(status, resp.content)
    if status in (400, 404):   # a service, entity set or property the system does not have
        return ConfigError(f"{where} was refused: {reason} - check the stream's service, "
                           "entity_set, select/expand and filter, and that the communication "
                           "arrangement grants the service")
    return FatalError(f"{where} was refused: {reason}")


def note_sap_messages(headers: Mapping[str, str], where: str) -> list[str]:
    """Log the messages SAP sent with a successful answer in its ``sap-message`` header
    (JSON: ``code``, ``message``, ``severity``, ``target``, ``details``; a text that is
    not JSON is one warning); returns the text of the warnings and errors."""
    value = next((v for k, v in headers.items() if k.lower() == "sap-message"), None)
    try:
        top = json.loads(value) if value else None
    except ValueError:
        top = {"code": "", "message": value, "severity": "warning", "target": ""}
    if not isinstance(top, dict):
        return []
    noted = []
    for note in [top, *(d for d in top.get("details") or [] if isinstance(d, dict))]:
        severity = str(note.get("severity") or "info").lower()
        target = f" (field {note['target']})" if note.get("target") else ""
        text = f"{note.get('code') or 'SAP'}: {note.get('message')}{target}"
        if severity in ("warning", "error", "abort"):
            log.warning("SAP %s on %s: %s", severity, where, text)
            noted.append(f"{severity}: {text}")
        else:
            log.info("SAP %s on %s: %s", severity, where, text)
    return noted


class SapClient(HttpClient):
    """The shared client with SAP's error table, reading (it retries); ``writer`` is its
    single-attempt copy (same cookies, same CSRF session) that sends the ``$batch``
    calls with the CSRF token."""

    def __init__(self, config: SapConfig, **client_options: Any):
        super().__init__(config.http_settings(), base_url=config.base_url,
                         auth=build_auth(config.auth), error_mapper=error_mapper, name="sap",
                         **client_options)
        self.config = config
        self._token: str | None = None
        self._lock = threading.Lock()
        self.token_fetches = 0
        #: the warnings SAP sent in ``sap-message`` headers, newest last (up to 1000)
        self.warnings: list[str] = []
        self.session.hooks["response"].append(self._sap_message_hook)
        self.writer = self.single_attempt()

    def _sap_message_hook(self, resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        if 200 <= resp.status_code < 300:
            self.note(resp.headers, request_line(resp))

    def note(self, headers: Mapping[str, str], where: str) -> None:
        """Log and keep the ``sap-message`` warnings of one answer (or $batch part)."""
        noted = note_sap_messages(headers, where)
        with self._lock:
            self.warnings = (self.warnings + noted)[-1000:]

    def take_warnings(self) -> list[str]:
        """The warnings kept since the last call (and forget them)."""
        with self._lock:
            taken, self.warnings = self.warnings, []
        return taken

    def params(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The query parameters of every call (``sap-client``, ``sap-language``), then
        ``extra``."""
        base = {"sap-client": self.config.sap_client, "sap-language": self.config.language}
        return {**{k: v for k, v in base.items() if v}, **(extra or {})}

    def entities(self, stream: SapStreamConfig, query: dict[str, Any]) -> Iterator[dict]:
        """The raw entities of the stream's entity set that ``query`` selects, every page
        (``__next``) read."""
        url = f"{self.config.service_path(stream.service)}/{stream.entity_set}"
        yield from paged_records(ODataPaginator(), self, url, self.params(query),
                                 headers={"Accept": "application/json"})

    # -- CSRF ----------------------------------------------------------------
    def fetch_token(self, service: str) -> str:
        path = self.config.service_path(service) + "/"
        resp = self.request("GET", path, params=self.params(),
                            headers={"x-csrf-token": "Fetch", "Accept": "application/json"},
                            expect_json=False)
        token = resp.headers.get("x-csrf-token")
        if resp.status_code >= 400 or not token or token.lower() == "required":
            raise FatalError(f"SAP: could not fetch a CSRF token from {path} (HTTP "
                             f"{resp.status_code}); check that the communication user may "
                             f"call {service} and that the service is activated")
        with self._lock:
            self._token = token
            self.token_fetches += 1
        return token

    def send_batch(self, service: str, parts: list[batch.Part], where: str) -> list[batch.Part]:
        """One ``$batch`` to ``service`` with the CSRF token (fetched again once when
        refused): the answer's parts, one per part sent; the warnings of those that went
        through are noted (``where``). A ValueError when the answer is cut or incomplete."""
        body, content_type = batch.encode(parts)
        path = f"{self.config.service_path(service)}/$batch"
        headers = {"Content-Type": content_type, "Accept": "multipart/mixed"}
        for attempt in (1, 2):
            token = self._token or self.fetch_token(service)
            try:
                resp = self.writer.request("POST", path, params=self.params(), data=body,
                                           headers={**headers, "x-csrf-token": token},
                                           expect_json=False)
                break
            except CsrfRequired:
                with self._lock:
                    if self._token == token:
                        self._token = None
                log.info("SAP: CSRF token refused for POST %s (attempt %d); fetching a new one",
                         path, attempt)
        else:
            raise FatalError(f"SAP: POST {path} was refused for a missing CSRF token even "
                             "with a freshly fetched one; check that the session cookies are "
                             "not stripped by a proxy in between")
        if resp.status_code >= 400:
            raise FatalError(f"SAP refused the $batch to {service}: "
                             f"{describe_error(resp.status_code, resp.content)}")
        answers = batch.decode(resp.content, resp.headers.get("Content-Type", ""))
        if len(answers) != len(parts):
            raise ValueError(f"$batch answered {len(answers)} parts for {len(parts)} changesets")
        for answer in answers:   # warnings SAP attached to a write that went through
            for message in answer if isinstance(answer, list) else [answer]:
                if message.ok:
                    self.note(message.headers, where)
        return answers


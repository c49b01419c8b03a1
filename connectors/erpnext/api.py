"""Frappe specifics: error bodies, the site rate limit, timestamps, the HTTP clients.

Frappe answers a refused call with ``exc_type`` (``MandatoryError``,
``LinkValidationError``, ``DuplicateEntryError``...) and ``_server_messages``:
a JSON string holding a list of JSON strings, each a message dict whose
``message`` may contain HTML. :func:`frappe_error` turns that into one line.

A DocType the site does not have, a field a list may not select and a column
the database does not have are configuration errors (:func:`config_problem`):
the run stops once, exit 2.

The site rate limit (``rate_limit`` in site_config) answers ``429`` with
``Retry-After`` and ``X-RateLimit-Remaining: 0`` until its window resets. A
short wait is retried by the HTTP client; a window that resets later than
``retry.max_retry_after`` means the quota is used up, which stops the run.
"""

from __future__ import annotations

__all__ = ["frappe_error", "error_mapper", "build_client", "to_cursor", "to_frappe",
           "config_problem"]

import html
import json
import re
import zoneinfo
from typing import Any

import requests

from crm2erp.connectors.toolkit.errors import json_or_none, quota_used_up, refused, status_text
from crm2erp.connectors.toolkit.timestamps import utc_instant
from crm2erp.errors import FatalError
from crm2erp.http import HttpClient, build_auth
from crm2erp.http.retry import parse_retry_after

_TAGS = re.compile(r"<[^>]+>")


def frappe_error(status: int, content: bytes | str | None) -> str:
    """``"HTTP 417 MandatoryError: Value missing for Customer: Customer Name"``."""
    body = json_or_none(content)
    if not isinstance(body, dict):
        return status_text(status, content)
    messages = []
    try:
        for item in json.loads(body.get("_server_messages") or "[]"):
            message = json.loads(item).get("message") if isinstance(item, str) else item
            if message:
                messages.append(html.unescape(_TAGS.sub("", str(message))).strip())
    except (ValueError, AttributeError):
        pass
    if not messages and body.get("exception"):
        messages.append(str(body["exception"]).split(":", 1)[-1].strip())
    kind = body.get("exc_type") or "Error"
    return f"HTTP {status} {kind}: {'; '.join(messages) or 'no message'}"


def config_problem(status: int, content: bytes | str | None) -> str | None:
    """The error's text when it says the configuration is wrong, else None: a DocType
    the site does not have (404 ``DoesNotExistError`` "DocType X not found"), a field
    a list may not select or filter on (417 ``DataError`` "Field not permitted in
    query: x"), or a column the database does not have (``OperationalError`` 1054
    "Unknown column")."""
    text = frappe_error(status, content)
    if (status == 404 and "DoesNotExistError: DocType " in text) or \
            (status == 417 and "DataError" in text) or "Unknown column" in text:
        return text
    return None


def error_mapper(max_wait: float):
    def mapper(resp: requests.Response) -> Exception | None:
        problem = config_problem(resp.status_code, resp.content) \
            if resp.status_code in (404, 417, 500) else None
        if problem:
            return refused("ERPNext", resp, problem, " - fix the stream's doctype, fields or "
                           "filters (or the outbound mapping's field names), or install the "
                           "app that adds them")
        wait = parse_retry_after(resp.headers.get("Retry-After")) or 0.0
        if resp.status_code == 429 and resp.headers.get("X-RateLimit-Remaining") == "0" \
                and wait > max_wait:
            return quota_used_up(
                "ERPNext", f"the site's request quota (rate_limit in site_config) is used up "
                f"for another {wait:.0f}s", " - run the flow again after the window resets, "
                "or ask the site admin to raise rate_limit.", error=FatalError)
        return None
    return mapper


def build_client(config, **options: Any) -> HttpClient:
    """The client for every call: each request is retried with ``config.retry``."""
    return HttpClient(config.http_settings(), base_url=config.base_url,
                      auth=build_auth(config.auth),
                      error_mapper=error_mapper(config.retry.max_retry_after), name="erpnext",
                      **options)


def to_cursor(value: Any, zone: str) -> str:
    """A Frappe timestamp (site-local, no zone) as ISO UTC with microseconds."""
    stamp = utc_instant(value, "ERPNext cursor value", zone=zoneinfo.ZoneInfo(zone))
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_frappe(value: Any, zone: str) -> str:
    """An ISO timestamp as the site-local text Frappe filters compare with."""
    stamp = utc_instant(value, "ERPNext cursor value").astimezone(zoneinfo.ZoneInfo(zone))
    return stamp.strftime("%Y-%m-%d %H:%M:%S.%f")

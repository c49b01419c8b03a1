"""Dataverse specifics on top of the shared HTTP client: OData errors and service protection.

Dataverse answers errors as ``{"error": {"code": "0x...", "message": ...}}``.
Service protection limits answer 429 with ``Retry-After`` (the client waits
as asked); a wait of ``quota_wait_threshold`` or more means the environment's
request entitlement is used up for the day, so the run stops with a
:class:`FatalError` and keeps its watermark. Writes (``PATCH``) are left to
the writer, which turns a refused record into a failed row, not a failed run.
A request that names an entity set, column or navigation property the
environment does not have (``Resource not found for the segment``, ``The
property 'x' does not exist on type``...), and any 400/404 answer to a read,
is a :class:`ConfigError`: the run stops once, exit 2.
"""

from __future__ import annotations

__all__ = ["error_mapper", "odata_error", "build_client", "SERVICE_PROTECTION_CODES",
           "ODATA_HEADERS", "names_unknown"]

from collections.abc import Callable
from typing import Any

import requests

from crm2erp.connectors.dynamics.config import DynamicsConfig
from crm2erp.connectors.toolkit.errors import error_body, refused, request_line
from crm2erp.errors import BudgetExhaustedError, FatalError, RetriableError
from crm2erp.http import HttpClient, build_auth
from crm2erp.http.config import ClientCredentialsAuthConfig
from crm2erp.http.retry import parse_retry_after

#: the OData protocol headers of every Web API request
ODATA_HEADERS = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
# number of requests, execution time, concurrent requests (per user, 5-minute window)
SERVICE_PROTECTION_CODES = {"0x80072322", "0x80072321", "0x80072326"}


# what Dataverse (and the OData library under it) says when a request names a table,
# column or navigation property that does not exist: a configuration error
_UNKNOWN = ("Resource not found for the segment", "does not exist on type",
            "Could not find a property named", "Could not find a navigation property",
            "An undeclared property", "Invalid property")


def names_unknown(message: str) -> bool:
    """Whether a Dataverse error message says the request named something unknown."""
    return any(marker in message for marker in _UNKNOWN)


def odata_error(resp: requests.Response) -> tuple[str, str] | None:
    """``(code, message)`` of an OData error body, or None."""
    body = error_body(resp)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    return str(error.get("code") or ""), str(error.get("message") or "")


def error_mapper(quota_wait: float) -> Callable[[requests.Response], Exception | None]:
    def mapper(resp: requests.Response) -> Exception | None:
        method = resp.request.method if resp.request is not None else "GET"
        where = request_line(resp)
        error = odata_error(resp)
        code, message = error or ("", resp.text[:300])
        if resp.status_code == 429:
            wait = parse_retry_after(resp.headers.get("Retry-After"))
            if wait is not None and wait >= quota_wait:
                return BudgetExhaustedError(
                    f"Dataverse: {where} was throttled for {wait:.0f}s ({code}: {message}). "
                    "The environment's API request entitlement looks used up: nothing was "
                    "lost, the watermark stays at the last committed batch - run the flow "
                    "again later or ask the Power Platform admin for more capacity.")
            return RetriableError(f"Dataverse service protection limit on {where} "
                                  f"({code}: {message})", retry_after=wait)
        if method in ("PATCH", "DELETE") and resp.status_code < 500:
            return None  # a refused record (or configuration): the writer sorts it out
        if resp.status_code in (400, 404) and error and (method == "GET" or
                                                         names_unknown(message)):
            return refused("Dataverse", resp, f"{code}: {_first_line(message)}", " - fix the "
                           "connection's stream config (entity_set, fields, children, "
                           "alternate_key) or the mapping's column names")
        if resp.status_code in (400, 404) and error:
            return refused("Dataverse", resp, f"{code}: {_first_line(message)}", ". Check the "
                           "connection's stream config and the application user's security "
                           "role.", error=FatalError)
        return None
    return mapper


def _first_line(message: str) -> str:
    """The message without the .NET stack trace Dataverse may append."""
    return message.split("\r\n")[0].split("\n   at ")[0].strip()


def build_client(config: DynamicsConfig, **kwargs: Any) -> HttpClient:
    auth_conf = config.auth
    if isinstance(auth_conf, ClientCredentialsAuthConfig) and not auth_conf.scope:
        auth_conf = auth_conf.model_copy(update={"scope": config.scope})
    auth = build_auth(auth_conf, default_token_url=config.token_url)
    return HttpClient(config.http_settings(), base_url=config.environment_url, auth=auth,
                      error_mapper=error_mapper(config.quota_wait_threshold),
                      name="dynamics", **kwargs)

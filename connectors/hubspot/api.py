"""HubSpot specifics on top of the shared HTTP client: error mapping and rate limits.

HubSpot answers errors as ``{"status": "error", "message", "category",
"correlationId", ...}``; a 429 adds ``errorType: RATE_LIMIT`` and the
``policyName`` of the limit that was hit. ``TEN_SECONDLY_ROLLING`` (and the
per-second search limit) clears within seconds, so it is retried; ``DAILY``
means the portal's daily quota is gone and retrying today is pointless.
Every authenticated answer carries ``X-HubSpot-RateLimit-*`` headers, which
:func:`parse_rate_headers` reads so the connector can report usage.
"""

from __future__ import annotations

__all__ = ["error_mapper", "parse_rate_headers", "build_client", "hubspot_error",
           "describe_error", "config_problem", "CONFIG_CODES"]

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from crm2erp.connectors.hubspot.config import HubSpotConfig
from crm2erp.connectors.toolkit.errors import error_body, quota_used_up, refused, request_line
from crm2erp.connectors.toolkit.headers import header_numbers
from crm2erp.errors import FatalError, RetriableError
from crm2erp.http import HttpClient, build_auth
from crm2erp.http.retry import parse_retry_after

_HEADERS = {"daily": "X-HubSpot-RateLimit-Daily",
            "daily_remaining": "X-HubSpot-RateLimit-Daily-Remaining",
            "interval_ms": "X-HubSpot-RateLimit-Interval-Milliseconds",
            "max": "X-HubSpot-RateLimit-Max",
            "remaining": "X-HubSpot-RateLimit-Remaining"}


#: error codes that say the configuration names a property HubSpot does not have (or
#: one nobody may write): every record would be refused, so the run stops once, exit 2
CONFIG_CODES = ("PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE")
_UNKNOWN_TYPE = "Unable to infer object type"
#: refusals the client leaves to the caller, by status: a batch write refused as a whole
#: (the writer tells a configuration error from per-row failures) and a batch read none
#: of whose ids exists (the reader skips them)
_LEFT_TO_CALLER = {400: ("/batch/upsert", "/batch/update"), 404: ("/batch/read",)}


def describe_error(error: Mapping[str, Any]) -> str:
    """``CATEGORY: message [CODE] detail`` from a HubSpot error (or one of a 207's errors)."""
    text = f"{error.get('category', 'ERROR')}: {error.get('message', 'no message')}"
    for detail in error.get("errors") or []:
        if not isinstance(detail, Mapping):
            continue
        message = str(detail.get("message") or "")
        code = f"[{detail['code']}]" if detail.get("code") else ""
        text += f" {code}" + ("" if message in text else f" {message}")
    return text


def config_problem(error: Mapping[str, Any]) -> str | None:
    """The error's text when it says the configuration is wrong (an unknown property or
    object type), else None. HubSpot puts the code in ``errors[].code`` and, in older
    answers, only inside ``message`` (``Property values were not valid: [{...
    "error":"PROPERTY_DOESNT_EXIST"...}]``)."""
    codes = {str(d.get("code")) for d in error.get("errors") or [] if isinstance(d, Mapping)}
    message = str(error.get("message") or "")
    if codes & set(CONFIG_CODES) or any(c in message for c in CONFIG_CODES) \
            or _UNKNOWN_TYPE in message:
        return describe_error(error)
    return None


def hubspot_error(resp: requests.Response) -> dict[str, Any]:
    """The HubSpot error body of ``resp`` (empty dict when it is not one)."""
    body = error_body(resp)
    return body if isinstance(body, dict) and ("message" in body or "status" in body) else {}


def parse_rate_headers(resp: requests.Response | None) -> dict[str, int]:
    """The ``X-HubSpot-RateLimit-*`` headers of ``resp`` as ints (missing ones left out)."""
    return header_numbers(resp, _HEADERS)


def error_mapper(resp: requests.Response) -> Exception | None:
    """Claim the HubSpot errors the generic client cannot interpret."""
    body = hubspot_error(resp)
    message = body.get("message") or resp.text[:300]
    where = request_line(resp)
    if resp.status_code == 429:
        policy = str(body.get("policyName") or "")
        limits = parse_rate_headers(resp)
        if policy.upper() == "DAILY":
            shown = f" ({limits['daily']} calls a day)" if "daily" in limits else ""
            return quota_used_up("HubSpot", f"the portal's daily API limit is used up{shown}",
                                 " - run the flow again after midnight in the portal's time "
                                 "zone, or buy the API limit increase add-on.")
        wait = parse_retry_after(resp.headers.get("Retry-After"))
        if wait is None:
            interval = limits.get("interval_ms")
            wait = interval / 1000 if interval else 1.0
        return RetriableError(f"HubSpot {where}: rate limited ({policy or 'burst'}): {message}",
                              retry_after=wait)
    if urlsplit(resp.url).path.endswith(_LEFT_TO_CALLER.get(resp.status_code, ())):
        return None
    problem = config_problem(body) if resp.status_code in (400, 404) else None
    if problem:
        return refused("HubSpot", resp, problem, ". Fix the connection's stream config "
                       "(object_type, properties, id_property) or the outbound mapping's "
                       "property names, or create the property in HubSpot.")
    if resp.status_code in (400, 404, 409) and body:
        return refused("HubSpot", resp, f"{body.get('category', 'error')}: {message}",
                       ". Check the connection's stream config (object_type, properties, "
                       "id_property) and the private app's scopes.", error=FatalError)
    return None


def build_client(config: HubSpotConfig, **kwargs: Any) -> HttpClient:
    return HttpClient(config.http_settings(), base_url=config.base_url,
                      auth=build_auth(config.auth), error_mapper=error_mapper,
                      name="hubspot", **kwargs)

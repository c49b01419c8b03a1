"""Salesforce specifics on top of the shared HTTP client: error mapping and limits.

Salesforce answers errors as ``[{"message": ..., "errorCode": ...}]``. Most
are handled by the generic client (401 -> refresh, 5xx -> retry); this module
maps the ones that need Salesforce knowledge, above all
``REQUEST_LIMIT_EXCEEDED``: the org's rolling 24-hour API quota is used up,
retrying today is pointless, and the run must stop with its watermark kept.
"""

from __future__ import annotations

__all__ = ["error_mapper", "parse_limit_info", "build_client", "sf_errors"]

import logging
import re
from typing import Any
from urllib.parse import urlsplit

import requests

from crm2erp.connectors.salesforce.config import SalesforceConfig
from crm2erp.errors import FatalError
from crm2erp.http import HttpClient, build_auth

log = logging.getLogger(__name__)
_LIMIT = re.compile(r"api-usage=(\d+)/(\d+)")


def sf_errors(resp: requests.Response) -> list[dict[str, Any]]:
    """The ``[{"message", "errorCode"}]`` list of an error response (empty if not one)."""
    try:
        body = resp.json()
    except ValueError:
        return []
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        return []
    return [e for e in body if isinstance(e, dict) and "errorCode" in e]


def parse_limit_info(resp: requests.Response | None) -> tuple[int, int] | None:
    """``(used, max)`` from ``Sforce-Limit-Info: api-usage=N/M``, or None."""
    match = _LIMIT.search(resp.headers.get("Sforce-Limit-Info", "")) if resp is not None else None
    return (int(match[1]), int(match[2])) if match else None


def error_mapper(resp: requests.Response) -> Exception | None:
    """Claim the Salesforce errors the generic client cannot interpret."""
    errors = sf_errors(resp)
    codes = {e.get("errorCode") for e in errors}
    message = "; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in errors) or \
        resp.text[:300]
    where = f"{resp.request.method} {urlsplit(resp.url).path}" if resp.request else resp.url
    if "REQUEST_LIMIT_EXCEEDED" in codes:
        usage = parse_limit_info(resp)
        shown = f" (api-usage {usage[0]}/{usage[1]})" if usage else ""
        return FatalError(
            f"Salesforce: the org's daily API request limit is used up{shown}. Nothing was "
            "lost: the watermark stays at the last committed batch, so the run can resume "
            "later - run the flow again once the rolling 24-hour window frees requests, or "
            "ask the Salesforce admin to raise the limit.")
    if resp.status_code in (400, 404) and errors:
        return FatalError(f"Salesforce refused {where}: {message}. Check the connection's "
                          "stream config (sobject, fields, external_id_field) and api_version.")
    return None


def build_client(config: SalesforceConfig, **kwargs: Any) -> HttpClient:
    auth = build_auth(config.auth, default_token_url=config.token_url,
                      default_audience=config.login_url)
    return HttpClient(config.http_settings(), base_url=config.instance_url, auth=auth,
                      error_mapper=error_mapper, name="salesforce", **kwargs)

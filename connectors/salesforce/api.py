"""Salesforce specifics on top of the shared HTTP client: error mapping and limits.

Salesforce answers errors as ``[{"message": ..., "errorCode": ..., "fields": [...]}]``.
Most are handled by the generic client (401 -> refresh, 5xx -> retry); this
module maps the ones that need Salesforce knowledge: ``REQUEST_LIMIT_EXCEEDED``
(the org's rolling 24-hour API quota is used up, retrying today is pointless,
and the run must stop with its watermark kept) and the codes of
:data:`CONFIG_CODES` (a field or sObject the org does not have: a
:class:`~crm2erp.errors.ConfigError`, exit 2).
"""

from __future__ import annotations

__all__ = ["error_mapper", "parse_limit_info", "build_client", "describe_errors", "CONFIG_CODES"]

import re
from typing import Any
from urllib.parse import urlsplit

import requests

from crm2erp.connectors.salesforce.config import SalesforceConfig
from crm2erp.connectors.toolkit.errors import error_body, quota_used_up, refused
from crm2erp.errors import FatalError
from crm2erp.http import HttpClient, build_auth

_LIMIT = re.compile(r"api-usage=(\d+)/(\d+)")
#: error codes that say the configuration names a field or sObject the org does not
#: have (or the integration user cannot see or write): the run stops once, exit 2
CONFIG_CODES = {"INVALID_FIELD", "INVALID_TYPE", "MALFORMED_QUERY",
                "INVALID_FIELD_FOR_INSERT_UPDATE"}


def _sf_errors(resp: requests.Response) -> list[dict[str, Any]]:
    """The ``[{"message", "errorCode"}]`` list of an error response (empty if not one)."""
    body = error_body(resp)
    errors = body if isinstance(body, list) else [body]
    return [e for e in errors if isinstance(e, dict) and "errorCode" in e]


def describe_errors(errors: list[dict[str, Any]], *, code_key: str = "statusCode") -> str:
    """``"CODE: message (fields: A, B)"`` for each error of a body or of a record result."""
    parts = []
    for err in errors or [{code_key: "UNKNOWN", "message": "no error details"}]:
        fields = f" (fields: {', '.join(map(str, err['fields']))})" if err.get("fields") else ""
        text = " ".join(str(err.get("message")).split())   # SOQL errors span lines
        parts.append(f"{err.get(code_key)}: {text}{fields}")
    return "; ".join(parts)


def parse_limit_info(resp: requests.Response | None) -> tuple[int, int] | None:
    """``(used, max)`` from ``Sforce-Limit-Info: api-usage=N/M``, or None."""
    match = _LIMIT.search(resp.headers.get("Sforce-Limit-Info", "")) if resp is not None else None
    return (int(match[1]), int(match[2])) if match else None


def error_mapper(resp: requests.Response) -> Exception | None:
    """Claim the Salesforce errors the generic client cannot interpret."""
    errors = _sf_errors(resp)
    codes = {e.get("errorCode") for e in errors}
    if "REQUEST_LIMIT_EXCEEDED" in codes:
        usage = parse_limit_info(resp)
        shown = f" (api-usage {usage[0]}/{usage[1]})" if usage else ""
        return quota_used_up(
            "Salesforce", f"the org's daily API request limit is used up{shown}",
            ", so the run can resume later - run the flow again once the rolling 24-hour "
            "window frees requests, or ask the Salesforce admin to raise the limit.")
    if resp.status_code not in (400, 404) or not errors:
        return None
    message = describe_errors(errors, code_key="errorCode")
    unknown_resource = "NOT_FOUND" in codes and "/jobs/" not in urlsplit(resp.url).path
    if codes & CONFIG_CODES or unknown_resource:   # a vanished Bulk job is not a config error
        return refused("Salesforce", resp, message, ". Fix the connection's stream config "
                       "(sobject, fields, external_id_field), the outbound mapping's field "
                       "names or api_version, or the integration user's field-level security.")
    return refused("Salesforce", resp, message, error=FatalError)


def build_client(config: SalesforceConfig, **kwargs: Any) -> HttpClient:
    auth = build_auth(config.auth, default_token_url=f"{config.instance_url}/services/oauth2/token",
                      default_audience=config.login_url)
    return HttpClient(config.http_settings(), base_url=config.instance_url, auth=auth,
                      error_mapper=error_mapper, name="salesforce", **kwargs)

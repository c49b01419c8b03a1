"""The shared HTTP toolkit for API connectors (Salesforce, HubSpot, ERP REST APIs...).

Build an :class:`HttpClient` from an :class:`HttpConnectionConfig` subclass::

    client = HttpClient(config.http_settings(), base_url=config.instance_url,
                        auth=build_auth(config.auth, default_token_url=...))
    for page in NextLinkPaginator("next", "items").pages(client, "/v1/items"):
        ...
"""

from __future__ import annotations

__all__ = [
    "Auth",
    "AuthConfig",
    "HttpClient",
    "HttpConnectionConfig",
    "HttpSettings",
    "RateLimitConfig",
    "RequestStats",
    "RetryConfig",
    "TimeoutConfig",
    "TokenBucket",
    "build_auth",
    "decode_json",
    "make_session",
    "Paginator",
    "NextLinkPaginator",
    "CursorPaginator",
    "OffsetPaginator",
    "PagePaginator",
    "ODataPaginator",
]

from crm2erp.http.auth import Auth, build_auth
from crm2erp.http.client import HttpClient, RequestStats, decode_json, make_session
from crm2erp.http.config import (
    AuthConfig,
    HttpConnectionConfig,
    HttpSettings,
    RateLimitConfig,
    RetryConfig,
    TimeoutConfig,
)
from crm2erp.http.paginate import (
    CursorPaginator,
    NextLinkPaginator,
    ODataPaginator,
    OffsetPaginator,
    PagePaginator,
    Paginator,
)
from crm2erp.http.ratelimit import TokenBucket

"""Paginators: the five ways APIs hand out a long list, as small classes.

Each paginator walks the pages of one listing through an
:class:`~crm2erp.http.client.HttpClient` and yields every decoded page body;
``records(body)`` picks the list of items out of a page. They differ only in
how the next request is derived from the previous answer:

* :class:`NextLinkPaginator` - the body (or the ``Link`` header) holds the
  URL of the next page (Salesforce ``nextRecordsUrl``, JSON:API ``links.next``);
* :class:`CursorPaginator` - the body holds an opaque cursor sent back as a
  query parameter (HubSpot ``paging.next.after``, Stripe-style ``after``);
* :class:`OffsetPaginator` - ``offset``/``limit`` parameters;
* :class:`PagePaginator` - ``page``/``per_page`` parameters;
* :class:`ODataPaginator` - OData v4 ``@odata.nextLink`` or v2 ``d.__next``.
"""

from __future__ import annotations

__all__ = [
    "get_path",
    "Paginator",
    "NextLinkPaginator",
    "CursorPaginator",
    "OffsetPaginator",
    "PagePaginator",
    "ODataPaginator",
]

from collections.abc import Iterator, Mapping
from typing import Any

import requests

from crm2erp.errors import FatalError
from crm2erp.http.client import HttpClient, decode_json


def get_path(body: Any, path: str | None) -> Any:
    """``body['a']['b']`` for ``path='a.b'``; None when any step is missing."""
    if not path:
        return body
    for part in path.split("."):
        if not isinstance(body, Mapping):
            return None
        body = body.get(part)
    return body


class Paginator:
    """Base: subclasses implement :meth:`next_request`."""

    def __init__(self, records_path: str | None = None, *, max_pages: int | None = None):
        self.records_path = records_path
        self.max_pages = max_pages

    def records(self, body: Any) -> list[Any]:
        found = get_path(body, self.records_path)
        return list(found) if isinstance(found, list) else []

    def first_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def next_request(self, body: Any, response: requests.Response, url: str,
                     params: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        raise NotImplementedError

    def pages(self, client: HttpClient, url: str, params: Mapping[str, Any] | None = None,
              **request_kwargs: Any) -> Iterator[Any]:
        current: tuple[str, dict[str, Any]] | None = (url, self.first_params(dict(params or {})))
        seen: set[tuple[str, str]] = set()
        count = 0
        while current is not None:
            page_url, page_params = current
            marker = (page_url, repr(sorted(page_params.items())))
            if marker in seen:
                raise FatalError(f"{client.name}: the API returned the same next page twice "
                                 f"({page_url}); stopping instead of looping forever")
            seen.add(marker)
            response = client.request("GET", page_url, params=page_params or None,
                                      **request_kwargs)
            if response.status_code >= 400:
                raise FatalError(f"{client.name}: GET {page_url} failed with HTTP "
                                 f"{response.status_code}: {response.text[:300]}")
            body = decode_json(response)
            yield body
            count += 1
            if self.max_pages is not None and count >= self.max_pages:
                return
            current = self.next_request(body, response, page_url, page_params)


class NextLinkPaginator(Paginator):
    """Follow a next-page URL from the body (``next_path``) or the ``Link`` header."""

    def __init__(self, next_path: str | None = "next", records_path: str | None = None, **kw):
        super().__init__(records_path, **kw)
        self.next_path = next_path

    def next_request(self, body, response, url, params):
        link = get_path(body, self.next_path) if self.next_path else None
        if not link:
            link = response.links.get("next", {}).get("url")
        return (link, {}) if link else None


class CursorPaginator(Paginator):
    """Send the cursor found at ``cursor_path`` back as the ``param`` query parameter."""

    def __init__(self, cursor_path: str, param: str = "after",
                 records_path: str | None = None, **kw):
        super().__init__(records_path, **kw)
        self.cursor_path, self.param = cursor_path, param

    def next_request(self, body, response, url, params):
        cursor = get_path(body, self.cursor_path)
        if cursor in (None, ""):
            return None
        return url, {**params, self.param: cursor}


class OffsetPaginator(Paginator):
    """``offset``/``limit``; stops at the first page shorter than ``limit``."""

    def __init__(self, limit: int, records_path: str | None = None, *,
                 offset_param: str = "offset", limit_param: str = "limit", **kw):
        super().__init__(records_path, **kw)
        self.limit, self.offset_param, self.limit_param = limit, offset_param, limit_param

    def first_params(self, params):
        return {**params, self.offset_param: 0, self.limit_param: self.limit}

    def next_request(self, body, response, url, params):
        if len(self.records(body)) < self.limit:
            return None
        return url, {**params, self.offset_param: int(params[self.offset_param]) + self.limit}


class PagePaginator(Paginator):
    """``page``/``per_page``; stops at the first short page."""

    def __init__(self, size: int, records_path: str | None = None, *, page_param: str = "page",
                 size_param: str = "per_page", first_page: int = 1, **kw):
        super().__init__(records_path, **kw)
        self.size, self.page_param, self.size_param = size, page_param, size_param
        self.first_page = first_page

    def first_params(self, params):
        return {**params, self.page_param: self.first_page, self.size_param: self.size}

    def next_request(self, body, response, url, params):
        if len(self.records(body)) < self.size:
            return None
        return url, {**params, self.page_param: int(params[self.page_param]) + 1}


class ODataPaginator(Paginator):
    """OData: v4 ``@odata.nextLink`` beside ``value``; v2 ``d.__next`` beside ``d.results``."""

    def records(self, body):
        if self.records_path:
            return super().records(body)
        if isinstance(body, Mapping) and isinstance(body.get("value"), list):
            return list(body["value"])
        results = get_path(body, "d.results")
        return list(results) if isinstance(results, list) else []

    def next_request(self, body, response, url, params):
        if not isinstance(body, Mapping):
            return None
        link = body.get("@odata.nextLink") or get_path(body, "d.__next") or body.get("__next")
        return (link, {}) if link else None

"""Every record of a paged read, written once.

:meth:`crm2erp.http.Paginator.pages` answers the pages (following next links,
cursors or offsets, refusing a page it has read already); every connector then
took the records out of each page the same way, some noting the API usage a
page's answer carries. :func:`paged_records` is that loop. :func:`header_pages`
walks pages that are not JSON (CSV results) whose next page a response header names.
:func:`keyset_records` reads a listing by keyset (each page asks for the records
after the last one of the page before; no offsets that shift while the data changes).
"""

from __future__ import annotations

__all__ = ["header_pages", "keyset_records", "paged_records"]

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import requests

from crm2erp.http import HttpClient, Paginator

T = TypeVar("T")
Key = TypeVar("Key")


def paged_records(paginator: Paginator, client: HttpClient, url: str,
                  params: Mapping[str, Any] | None = None, *,
                  each_page: Callable[[], None] | None = None,
                  **request_kwargs: Any) -> Iterator[Any]:
    """The records of every page ``paginator`` reads from ``url`` (with ``params`` and
    ``request_kwargs`` such as ``headers``), in order; ``each_page()`` runs when a page
    has arrived, before its records are handed out."""
    for page in paginator.pages(client, url, params, **request_kwargs):
        if each_page is not None:
            each_page()
        yield from paginator.records(page)


def header_pages(client: HttpClient, url: str, params: Mapping[str, Any], *, header: str,
                 param: str, last: tuple[str, ...] = ("null",),
                 **request_kwargs: Any) -> Iterator[requests.Response]:
    """Every page (the response) of a GET listing whose next page the ``header`` of each
    answer names, sent back as the query parameter ``param`` beside ``params``; no header,
    an empty one or one of ``last`` ends the listing (Salesforce Bulk results:
    ``Sforce-Locator`` and ``locator``, ``"null"`` on the last page)."""
    page_params = dict(params)
    while True:
        resp = client.request("GET", url, params=page_params, **request_kwargs)
        yield resp
        token = resp.headers.get(header)
        if not token or token in last:
            return
        page_params = {**page_params, param: token}


def keyset_records(fetch: Callable[[Key | None], Sequence[T]],
                   after_of: Callable[[Sequence[T]], Key], *, size: int,
                   after: Key | None = None) -> Iterator[T]:
    """Every record of a listing read by keyset, in order: ``fetch(after)`` answers the
    page of at most ``size`` records after the key ``after`` (None: from the start);
    ``after_of(page)`` is the key the next page starts after. A page shorter than
    ``size`` (or empty) is the last; a page's records are handed out before the next
    page is asked for."""
    while True:
        page = fetch(after)
        yield from page
        if len(page) < size:
            return
        after = after_of(page)

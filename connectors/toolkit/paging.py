"""Every record of a paged read, written once.

:meth:`crm2erp.http.Paginator.pages` answers the pages (following next links,
cursors or offsets, refusing a page it has read already); every connector then
took the records out of each page the same way, some noting the API usage a
page's answer carries. :func:`paged_records` is that loop.
"""

from __future__ import annotations

__all__ = ["paged_records"]

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from crm2erp.http import HttpClient, Paginator


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

"""A listing read whole, strictly, without trusting the API's order, written once.

For an API without a native change feed: the reader lists every record a
request returns, keeps those after the watermark, keeps the latest version
of a record that shows up twice (offset paging over a changing table) and
sorts by ``(cursor, key)`` before cutting batches (:func:`latest_batches`),
so a resumed read skips exactly what it has. The paginators here, built from
the five declared paging styles (:data:`PaginatorConfig`), pick records
strictly (:func:`select_records`: a reply of another shape is a configuration
error, never an empty page), and offset and page paging end on an empty page,
a ``has_more`` flag or a ``total`` and move on by the records received.
:class:`AscendingCheck` stops a read by position over an order that moves.
"""

from __future__ import annotations

__all__ = ["AscendingCheck", "CursorListing", "CursorPaging", "Entry", "NextLinkListing",
           "NextLinkPaging", "NoPaging", "OffsetListing", "OffsetPaging", "PageListing",
           "PagePaging", "PaginatorConfig", "SingleListing", "build_paginator", "key_text",
           "latest_batches", "select_records"]

from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from crm2erp.connectors.base import Batch, Cursor, Row
from crm2erp.connectors.toolkit.batches import chunks
from crm2erp.connectors.toolkit.config import StrictModel
from crm2erp.errors import ConfigError
from crm2erp.http import (
    CursorPaginator,
    NextLinkPaginator,
    OffsetPaginator,
    PagePaginator,
    Paginator,
)
from crm2erp.http.paginate import get_path

#: ``(cursor position or None, key text, row, the deleted key or None)``
Entry = tuple[Any, str, Row, str | None]


def select_records(body: Any, path: str | None, where: str) -> list[Any]:
    """The record list at ``path`` of a reply; a missing path is a configuration error.

    An empty reply, or ``null`` at the path (how some APIs say "no records"),
    is an empty list. A non-empty reply without the path means the API's reply
    shape is not what ``records`` describes, so reading on would report a
    quiet success: the error names the path and the keys that were there.
    """
    if body in (None, "", [], {}):
        return []
    found: Any = body
    for depth, part in enumerate(path.split(".") if path else []):
        if not isinstance(found, Mapping) or part not in found:
            at = ".".join(path.split(".")[:depth]) or "the reply"
            keys = ", ".join(map(str, found)) if isinstance(found, Mapping) else \
                f"a {type(found).__name__}"
            raise ConfigError(f"{where}: the reply has no records at {path!r} "
                              f"({at} holds: {keys or 'nothing'}); fix 'records'")
        found = found[part]
    if found is None:
        return []
    if not isinstance(found, list):
        keys = ", ".join(map(str, found))[:300] if isinstance(found, Mapping) else ""
        raise ConfigError(f"{where}: {path or 'the reply'!s} is a {type(found).__name__}, "
                          f"not a list of records{f' (keys: {keys})' if keys else ''}; fix "
                          "'records'")
    return found


class _Strict(Paginator):
    """Pick records strictly (:func:`select_records`); ``where`` starts the errors."""

    def __init__(self, *args: Any, where: str, **kw: Any):
        super().__init__(*args, **kw)
        self.where = where

    def records(self, body):
        return select_records(body, self.records_path, self.where)


class _Numbered(_Strict):
    """Offset and page paging: when a listing ends.

    An empty page always ends it; a ``has_more`` flag that is false, or as
    many records as ``total`` says there are, end it earlier. Offsets advance
    by the number of records received, so an API that caps ``limit`` below
    the one asked for loses nothing.
    """

    def __init__(self, *args: Any, has_more: str | None = None, total: str | None = None,
                 **kw: Any):
        super().__init__(*args, **kw)
        self.has_more, self.total = has_more, total

    def first_params(self, params):
        self.seen = 0
        return super().first_params(params)

    def next_request(self, body, response, url, params):
        received = len(self.records(body))
        if not received:
            return None
        self.seen += received
        if self.has_more is not None and not get_path(body, self.has_more):
            return None
        if self.total is not None:
            total = get_path(body, self.total)
            if isinstance(total, bool) or not isinstance(total, int | str) \
                    or not str(total).isdigit():
                raise ConfigError(f"{self.where}: the reply's total {self.total!r} is "
                                  f"{total!r}, not a number; fix 'paginator.total'")
            if self.seen >= int(total):
                return None
        return self._advance(url, params, received)

    def _advance(self, url: str, params: dict[str, Any], received: int):
        raise NotImplementedError


class OffsetListing(_Numbered, OffsetPaginator):
    def _advance(self, url, params, received):
        return url, {**params, self.offset_param: int(params[self.offset_param]) + received}


class PageListing(_Numbered, PagePaginator):
    def _advance(self, url, params, received):
        return url, {**params, self.page_param: int(params[self.page_param]) + 1}


class CursorListing(_Strict, CursorPaginator):
    """An opaque cursor sent back; ``limit`` (when set) asked for in ``limit_param``."""

    def __init__(self, *args: Any, limit: int | None = None, limit_param: str = "limit",
                 **kw: Any):
        super().__init__(*args, **kw)
        self.limit, self.limit_param = limit, limit_param

    def first_params(self, params):
        first = super().first_params(params)
        return {**first, self.limit_param: self.limit} if self.limit else first


class NextLinkListing(_Strict, NextLinkPaginator):
    pass


class SingleListing(_Strict):
    """One page, no paging."""

    def next_request(self, body, response, url, params):
        return None


class NextLinkPaging(StrictModel):
    type: Literal["next_link"]
    next: str | None = Field(None, description="dotted path of the next URL; None: Link header")


class CursorPaging(StrictModel):
    type: Literal["cursor"]
    cursor_path: str
    param: str = "after"
    limit: int | None = Field(None, ge=1)
    limit_param: str = "limit"


_ORDER_BY = ("the field the API sorts this listing by, ascending; it must never change "
             "(an id or a creation time) so that records added during a run come last")


class _NumberedPaging(StrictModel):
    """Offset and page paging count positions in a list that may change while it is read.

    They need ``order_by``: the (renamed) record field the API sorts the
    listing by, ascending, that never changes. The reader checks every page
    against it and stops with a configuration error when the API's order is
    different (newest first, by update time, random), because then records
    can be skipped when data changes during the run. Without ``has_more`` or
    ``total`` a listing ends at the first empty page.
    """

    has_more: str | None = Field(None, description="dotted path of a 'more pages' flag")
    total: str | None = Field(None, description="dotted path of the total number of records")
    order_by: str | None = Field(None, description=_ORDER_BY)

    @model_validator(mode="after")
    def _ordered(self):
        if not self.order_by:
            raise ValueError(
                f"{self.type} paging needs order_by: {_ORDER_BY}. Sort the listing by its id "
                "(params) and name that field here, or use cursor or next_link paging; "
                "paging by position over an order that changes can skip records")
        return self


class OffsetPaging(_NumberedPaging):
    type: Literal["offset"]
    limit: int = Field(100, ge=1)
    offset_param: str = "offset"
    limit_param: str = "limit"


class PagePaging(_NumberedPaging):
    type: Literal["page"]
    size: int = Field(100, ge=1)
    page_param: str = "page"
    size_param: str = "per_page"
    first_page: int = 1


class NoPaging(StrictModel):
    type: Literal["none"]


PaginatorConfig = Annotated[NextLinkPaging | CursorPaging | OffsetPaging | PagePaging | NoPaging,
                            Field(discriminator="type")]


#: ``paginator.type`` -> the listing its other settings (but ``order_by``) are passed to
_LISTINGS: dict[str, type[Paginator]] = {
    "next_link": NextLinkListing, "cursor": CursorListing, "offset": OffsetListing,
    "page": PageListing, "none": SingleListing}


def build_paginator(paging: PaginatorConfig, records_path: str | None,
                    where: str) -> Paginator:
    """The listing ``paging`` declares, picking records at ``records_path``; ``where``
    (connection, stream, request) starts its errors."""
    settings = paging.model_dump(exclude={"type", "order_by"})
    if "next" in settings:
        settings["next_path"] = settings.pop("next")
    return _LISTINGS[paging.type](records_path=records_path, where=where, **settings)


class AscendingCheck:
    """Offset and page paging: the listing must come sorted by ``field``, ascending.

    Records are compared as they arrive, across pages; the first one out of
    order stops the read with a configuration error, since position-based
    paging over any other order can skip records when data changes mid-run.
    ``field`` None checks nothing (paging that needs no order).
    """

    def __init__(self, field: str | None, where: str):
        self.field, self.where, self.last = field, where, None

    @staticmethod
    def _rank(value: Any) -> tuple:
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return (0, value, "")
        return (1, 0, str(value))

    def check(self, row: Row) -> None:
        if self.field is None:
            return
        value = get_path(row, self.field)
        if value is None:
            raise ConfigError(f"{self.where}: a record has no {self.field!r}, the field "
                              "paginator.order_by says the listing is sorted by")
        if self.last is not None and self._rank(value) < self._rank(self.last):
            raise ConfigError(
                f"{self.where}: the listing is not sorted by {self.field!r} ascending "
                f"({value!r} came after {self.last!r}); offset and page paging over "
                "another order can skip records. Sort it by that field (params) or use "
                "cursor or next_link paging")
        self.last = value


def key_text(value: Any) -> str:
    """A key as tie-breaker text: numbers zero-padded so they sort as numbers."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return f"{value:020d}"
    text = str(value)
    return text.zfill(20) if text.isdigit() else text


def latest_batches(entries: Iterable[Entry], after: tuple[Any, str | None] | None,
                   batch_size: int) -> Iterator[Batch]:
    """Batches of the latest version of each key, sorted by ``(cursor, key)``.

    ``after`` is the watermark as ``(position, key text or None)``: entries
    before it are dropped (those without a position never are). Of the entries
    left, each key keeps its latest version (the first one seen while either
    has no position). Entries without a position come first and their
    batches carry no cursor; the others carry the last ``(position, key)``.
    """
    latest: dict[str, Entry] = {}
    for entry in entries:
        value, key = entry[0], entry[1]
        if after is not None and value is not None and (
                value < after[0] or (after[1] is not None and (value, key) <= after)):
            continue
        previous = latest.get(key)
        if previous is None or (value is not None and previous[0] is not None
                                and value >= previous[0]):
            latest[key] = entry
    ordered = sorted(latest.values(),
                     key=lambda e: (e[0] is not None, e[0] if e[0] is not None else 0, e[1]))
    for chunk in chunks(ordered, batch_size):
        last = chunk[-1]
        yield Batch([row for _, _, row, gone in chunk if gone is None],
                    Cursor(last[0], last[1]) if last[0] is not None else None,
                    [gone for _, _, _, gone in chunk if gone is not None])

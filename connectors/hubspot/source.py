"""Reading HubSpot streams: the search API in cursor order, with the 10,000-result cap.

Incremental and full reads use ``POST /crm/v3/objects/{type}/search`` with a
``GTE`` filter on the stream's modification date (``hs_lastmodifieddate``;
contacts use ``lastmodifieddate``) sorted ascending. Search accepts one sort
property only, so rows sharing a timestamp are put in id order locally
(:class:`~.ordering.OrderedBatcher`).

HubSpot serves at most 10,000 results per search (``after`` beyond that is
refused). Before ``after`` would pass the cap the search restarts from the
last timestamp seen, skipping the ids already returned at that timestamp.
If more than the cap share one timestamp, that instant is paged by
``hs_object_id`` (``EQ`` the timestamp, ``GT`` the last id) before going on.

Search never returns archived (deleted) records, so incremental reads also
list ``archived=true`` records and surface those archived since the
watermark as ``Batch.deleted_keys``. Associations (contact -> company,
deal -> line items) come from the v4 associations batch-read endpoint, one
call per association type and batch. A stream's ``children`` (a deal's line
items) are then read with ``batch/read`` by id, 100 per call, and embedded
under the child's name in association order. ``full_read: list`` reads full
refreshes through the list endpoint instead (associations inline; id order,
so only the last batch carries the watermark).
"""

from __future__ import annotations

__all__ = ["HubSpotReader"]

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from crm2erp.connectors.base import Batch, Cursor, Row
from crm2erp.connectors.hubspot.api import parse_rate_headers
from crm2erp.connectors.hubspot.config import ChildConfig, HubSpotConfig, HubSpotStreamConfig
from crm2erp.connectors.toolkit.children import embed_children
from crm2erp.connectors.toolkit.ordering import OrderedBatcher
from crm2erp.connectors.toolkit.paging import keyset_records, paged_records
from crm2erp.connectors.toolkit.targets import json_answer, rows_by_key
from crm2erp.connectors.toolkit.timestamps import iso_millis, utc_instant
from crm2erp.http import CursorPaginator, HttpClient, TokenBucket
from crm2erp.http.paginate import get_path

log = logging.getLogger(__name__)
ASSOC_BATCH = 1000  # inputs per v4 associations batch read
READ_BATCH = 100    # inputs per v3 batch read
#: the CRM v3 list endpoints' paging (``paging.next.after`` sent back as ``after``)
PAGES = CursorPaginator("paging.next.after", "after", "results")


def _epoch_ms(stamp: str) -> str:
    return str(int(utc_instant(stamp).timestamp() * 1000))


def _filter(prop: str, operator: str, value: str) -> dict[str, str]:
    return {"propertyName": prop, "operator": operator, "value": value}


class HubSpotReader:
    def __init__(self, client: HttpClient, config: HubSpotConfig):
        self.client, self.config = client, config
        rate = config.search_requests_per_second
        self.search_limiter = TokenBucket(rate, max(1, int(rate)), sleep=client.sleep) \
            if rate else None
        self.searches = 0
        self.restarts = 0
        self.rate_limits: dict[str, int] = {}

    # -- entry point -------------------------------------------------------
    def read(self, stream: HubSpotStreamConfig, since: Cursor | None,
             batch_size: int) -> Iterator[Batch]:
        """Search from the watermark (deletions merged in), or a full read through the
        list endpoint with ``full_read: list`` (associations inline)."""
        listed = since is None and self.config.full_read == "list"
        if listed:
            batcher = OrderedBatcher(batch_size, None, with_cursor=False)
            links = {"associations": ",".join(stream.associations)} if stream.associations else {}
            records = self.listed(f"/crm/v3/objects/{stream.object_type}", {
                "limit": self.config.list_page_size, "archived": "false",
                "properties": ",".join(stream.properties), **links})
            rows = (self._listed_row(stream, record) for record in records)
        else:
            deletions = self.archived_since(stream, since) \
                if since is not None and stream.track_deletes else []
            batcher = OrderedBatcher(batch_size, since, deletions=deletions)
            start = iso_millis(since.value) if since is not None else None
            rows = map(self._row, self._search(stream, start))
        for batch in batcher.batches((iso_millis(row[stream.cursor_property]), row["id"], row)
                                     for row in rows):
            yield self._embed(stream, batch if listed else self._link(stream, batch))

    def _post(self, path: str, body: dict[str, Any], what: str, *,
              none_found: bool = False) -> dict[str, Any]:
        """The answer to ``POST path`` (rate limits noted); with ``none_found``, a 404
        (a ``batch/read`` none of whose ids exists) is an answer without results."""
        resp = self.client.request("POST", path, json=body)
        self._note_limits()
        if none_found and resp.status_code == 404:
            return {}
        return json_answer("HubSpot", what, resp)

    def listed(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every record of a list endpoint (``after`` paging; rate limits noted per page)."""
        yield from paged_records(PAGES, self.client, path, params, each_page=self._note_limits)

    # -- search ------------------------------------------------------------
    def _post_search(self, stream: HubSpotStreamConfig, filters: list[dict[str, str]],
                     sort_by: str, after: int = 0) -> dict:
        """One page of a search matching all ``filters``, ascending by ``sort_by``."""
        body: dict[str, Any] = {
            "filterGroups": [{"filters": filters}] if filters else [],
            "sorts": [{"propertyName": sort_by, "direction": "ASCENDING"}],
            "properties": stream.properties, "limit": self.config.page_size,
            **({"after": str(after)} if after else {})}
        if self.search_limiter is not None:
            self.search_limiter.acquire()
        self.searches += 1
        return self._post(f"/crm/v3/objects/{stream.object_type}/search", body,
                          f"search on {stream.object_type}")

    def _search(self, stream: HubSpotStreamConfig,
                start: str | None) -> Iterator[dict[str, Any]]:
        """Every record from ``start`` on, in cursor order, restarting at the cap."""
        cursor, size, cap = stream.cursor_property, self.config.page_size, self.config.search_cap
        while True:
            filters = [_filter(cursor, "GTE", _epoch_ms(start))] if start else []
            last_stamp: str | None = None
            after = 0
            while True:
                page = self._post_search(stream, filters, cursor, after)
                for record in page.get("results") or []:
                    last_stamp = iso_millis((record.get("properties") or {}).get(cursor))
                    yield record
                nxt = get_path(page, "paging.next.after")
                if not nxt:
                    return
                after = int(nxt)
                if after + size > cap:
                    break  # the next page would pass the search cap: restart
            if last_stamp is None:
                return
            self.restarts += 1
            if start == last_stamp:
                # a whole capped search at one instant: page that instant by id, go past it
                yield from self._search_instant(stream, last_stamp)
                start = iso_millis(utc_instant(last_stamp) + dt.timedelta(milliseconds=1))
            else:
                log.info("HubSpot search on %s reached the %d-result cap; restarting from %s",
                         stream.object_type, cap, last_stamp)
                start = last_stamp

    def _search_instant(self, stream: HubSpotStreamConfig, stamp: str) -> Iterator[dict[str, Any]]:
        """All records modified exactly at ``stamp``, paged by ``hs_object_id``."""
        # ids already held at this instant came in no particular order: page from the
        # start and let the batcher drop the ones it has
        def page(last_id: int | None) -> list[dict[str, Any]]:
            filters = [_filter(stream.cursor_property, "EQ", _epoch_ms(stamp)),
                       _filter("hs_object_id", "GT", str(last_id or 0))]
            return self._post_search(stream, filters, "hs_object_id").get("results") or []

        return keyset_records(page, lambda found: max(int(record["id"]) for record in found),
                              size=self.config.page_size)

    # -- list endpoint -------------------------------------------------------
    def _listed_row(self, stream: HubSpotStreamConfig, record: dict[str, Any]) -> Row:
        """A list endpoint's record as a row, its associations as ``{kind: [ids]}``."""
        row = self._row(record)
        if stream.associations:
            found = record.get("associations") or {}
            row["associations"] = {
                kind: [str(a["id"]) for a in
                       (found.get(kind) or found.get(kind.replace("_", " ")) or {})
                       .get("results", [])]
                for kind in stream.associations}
        return row

    def archived_since(self, stream: HubSpotStreamConfig,
                       since: Cursor) -> list[tuple[str, str]]:
        """``(archivedAt, id)`` of the records archived at or after the watermark."""
        stamp = iso_millis(since.value)
        archived = ((iso_millis(record["archivedAt"]), str(record["id"]))
                    for record in self.listed(f"/crm/v3/objects/{stream.object_type}",
                                              {"limit": self.config.list_page_size,
                                               "archived": "true"})
                    if record.get("archivedAt"))
        return [item for item in archived if item[0] >= stamp]

    # -- rows and associations --------------------------------------------------
    @staticmethod
    def _row(record: dict[str, Any]) -> Row:
        extras = {k: record[k] for k in ("createdAt", "updatedAt", "archived") if k in record}
        return {"id": str(record["id"]), **(record.get("properties") or {}), **extras}

    def _link(self, stream: HubSpotStreamConfig, batch: Batch) -> Batch:
        if not stream.associations or not batch.rows:
            return batch
        ids = [row["id"] for row in batch.rows]
        links = {kind: self.associations(stream.object_type, kind, ids)
                 for kind in stream.associations}
        for row in batch.rows:
            row["associations"] = {kind: links[kind].get(row["id"], []) for kind in links}
        return batch

    def _embed(self, stream: HubSpotStreamConfig, batch: Batch) -> Batch:
        def fetch(child: ChildConfig, ids: list[str]) -> dict[str, list[Row]]:
            target = self.config.streams[child.stream]
            kind = target.object_type
            links = {row["id"]: row["associations"][kind] for row in batch.rows} \
                if kind in stream.associations else self.associations(stream.object_type, kind, ids)
            records = self.read_by_id(target, [i for parent in ids for i in links.get(parent, [])])
            return {parent: [self._row(records[i]) for i in links.get(parent, []) if i in records]
                    for parent in ids}

        return embed_children(batch, "id", stream.children, fetch)

    def read_by_id(self, stream: HubSpotStreamConfig, ids: list[str],
                   properties: list[str] | None = None,
                   id_property: str | None = None) -> dict[str, dict[str, Any]]:
        """``{id: record}`` of the records among ``ids`` (values of ``id_property`` when
        given, and keyed by them) that HubSpot holds, not archived: ``batch/read`` of
        ``properties`` (the stream's by default), 100 ids per call; none when it answers 404."""

        def fetch(chunk: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
            body = {"properties": properties or stream.properties,
                    "inputs": [{"id": i} for i in chunk],
                    **({"idProperty": id_property} if id_property else {})}
            answer = self._post(f"/crm/v3/objects/{stream.object_type}/batch/read", body,
                                f"batch read of {stream.object_type}", none_found=True)
            for record in answer.get("results") or []:
                props = record.get("properties") or {}
                yield str(props.get(id_property) if id_property else record["id"]), record

        return rows_by_key(ids, READ_BATCH, fetch)

    def associations(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, list[str]]:
        """``{from id: [to ids]}`` through ``POST /crm/v4/associations/{from}/{to}/batch/read``."""
        def fetch(chunk: list[str]) -> Iterator[tuple[str, list[str]]]:
            answer = self._post(f"/crm/v4/associations/{from_type}/{to_type}/batch/read",
                                {"inputs": [{"id": i} for i in chunk]},
                                f"associations {from_type} -> {to_type}")
            for result in answer.get("results") or []:
                targets = [str(t["toObjectId"]) for t in result.get("to") or []]
                yield str(result["from"]["id"]), sorted(targets, key=lambda x: (len(x), x))

        return rows_by_key(ids, ASSOC_BATCH, fetch)

    def _note_limits(self) -> None:
        limits = parse_rate_headers(self.client.last_response)
        if limits:
            self.rate_limits = limits
            daily, left = limits.get("daily"), limits.get("daily_remaining")
            if daily and left is not None and left < 0.1 * daily:
                log.warning("HubSpot daily API limit nearly used up: %d of %d calls left",
                            left, daily)

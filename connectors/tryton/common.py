"""Helpers shared by the Tryton reader and writers.

Every Tryton RPC call is one database transaction, so a batch call that one
bad record makes fail wrote nothing: the writers run their batches through
the toolkit's :func:`~crm2erp.connectors.toolkit.batches.isolate`, which
splits a refused batch until the refused records are alone.

A call that changes records is sent once; when its answer is lost
(:func:`send_unless_done`) Tryton is asked which records it already changed,
and only the others are sent again: a record is never created twice, a
button never pressed twice.
"""

from __future__ import annotations

__all__ = ["Lookups", "NOT_ACTIVE", "parse_cursor", "cursor_value", "known", "press",
           "search_in", "send_unless_done"]

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from crm2erp.connectors.toolkit.batches import chunks
from crm2erp.connectors.toolkit.creates import create_isolated
from crm2erp.connectors.toolkit.timestamps import utc_instant
from crm2erp.connectors.tryton.client import TrytonClient
from crm2erp.errors import ConfigError

NOT_ACTIVE = {"active_test": False}   # context: also find archived records
T = TypeVar("T")


def parse_cursor(value: Any) -> dt.datetime | None:
    """A cursor value (ISO-8601 text or datetime) as the naive UTC Tryton stores."""
    if value is None:
        return None
    return utc_instant(value, "Tryton cursor", error=ConfigError).replace(tzinfo=None)


def cursor_value(row: dict[str, Any]) -> dt.datetime:
    """The change time of a record: ``write_date``, or ``create_date`` before any write."""
    return row.get("write_date") or row["create_date"]


def known(value: T | None, problem: str) -> T:
    """``value`` (an id looked up), or a ValueError saying ``problem`` when it is None."""
    if value is None:
        raise ValueError(problem)
    return value


def search_in(client: TrytonClient, model: str, field: str, values: Iterable[Any],
              fields: Sequence[str], context: dict[str, Any] | None = None) -> list[dict]:
    """The records of ``model`` whose ``field`` is one of ``values`` (each asked once, in
    calls of 500), read with ``fields``."""
    found: list[dict] = []
    for part in chunks(list(dict.fromkeys(values)), 500):
        found += client.search_read(model, [(field, "in", list(part))], fields, context=context)
    return found


def send_unless_done(client: TrytonClient, model: str, method: str,
                     items: Mapping[str, Any], done: Callable[[list[str]], Mapping[str, int]],
                     *, batch_size: int) -> dict[str, int | str]:
    """``{key: record id}`` for every key of ``items`` Tryton took, ``{key: error text}``
    for the ones it refused.

    ``items`` maps a key to what the call takes for it: the values of a record
    to ``create`` (Tryton answers the new ids), or a record id for a button
    (``quote``, ``confirm``: the id is the outcome). Calls go out once, in
    batches of ``batch_size``, a refused batch split to its culprits; when an
    answer is lost, ``done(keys)`` answers ``{key: record id}`` for the keys
    Tryton holds done now, and only the others are sent again
    (:func:`~crm2erp.connectors.toolkit.creates.create_isolated`).
    """
    def call(values: list[Any]) -> list[Any]:
        answer = client.model(model, method, values, idempotent=False)
        return answer if method == "create" else values   # a button: the ids pressed

    return create_isolated(items, call, done, client=client.http,
                           what=f"Tryton {method} on {model}", batch_size=batch_size)


def press(client: TrytonClient, model: str, button: str, ids: Mapping[str, int],
          reached: Collection[str], *, batch_size: int) -> dict[str, int | str]:
    """Press ``button`` on the records ``ids`` (``{key: id}``), once each: after a lost
    answer their states are read, and the ones in ``reached`` count as pressed
    (:func:`send_unless_done`; its outcomes)."""
    def done(keys: list[str]) -> dict[str, int]:
        states = {r["id"]: r["state"] for r in client.read(model, [ids[k] for k in keys],
                                                           ["state"])}
        return {k: ids[k] for k in keys if states.get(ids[k]) in reached}

    return send_unless_done(client, model, button, ids, done, batch_size=batch_size)


class Lookups:
    """Id caches for the small reference tables (countries, currencies, units, categories)."""

    def __init__(self, client: TrytonClient):
        self.client = client
        self._cache: dict[tuple[str, str], int | None] = {}

    def ids(self, model: str, field: str, values: Sequence[str]) -> dict[str, int]:
        """``value -> id`` for the records of ``model`` whose ``field`` is one of ``values``."""
        wanted = sorted({v for v in values if v} - {k for (m, k) in self._cache if m == model})
        if wanted:
            rows = self.client.search_read(model, [(field, "in", wanted)], [field])
            found = {r[field]: r["id"] for r in rows}
            for value in wanted:
                self._cache[(model, value)] = found.get(value)
        return {v: self._cache[(model, v)] for v in values
                if v and self._cache.get((model, v)) is not None}

    def one(self, model: str, field: str, value: str) -> int | None:
        return self.ids(model, field, [value]).get(value)

    def uom(self, name: str) -> int | None:
        """A unit of measure by name or symbol (``Unit`` / ``u``)."""
        key = ("product.uom", name)
        if key not in self._cache:
            rows = self.client.search_read(
                "product.uom", ["OR", ("name", "=", name), ("symbol", "=", name)], ["id"], limit=1)
            self._cache[key] = rows[0]["id"] if rows else None
        return self._cache[key]

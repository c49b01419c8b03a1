"""The external-id batch upsert writer: the part every API target shares.

A target that upserts on an external id (Salesforce's External ID field,
HubSpot's unique property, a Dataverse alternate key, an ERPNext custom field)
does the same around its one API call: rows without a key fail at once
(``WriteResult(FAILED)`` naming the field, never sent), the others go in calls
of at most ``size`` rows, and the answers come back in the rows' order.
:func:`write_in_batches` is that loop; the connector passes ``send``, which
turns one call's rows into one :class:`WriteResult` each.
"""

from __future__ import annotations

__all__ = ["delete_in_batches", "json_default", "required_setting", "write_in_batches"]

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.toolkit.batches import chunks
from crm2erp.connectors.toolkit.timestamps import utc_text
from crm2erp.errors import ConfigError

Send = Callable[[list[Row]], Sequence[WriteResult]]
SendIds = Callable[[list[str]], Sequence[WriteResult]]


def write_in_batches(rows: Sequence[Row], key_of: Callable[[Row], Any], send: Send, *,
                     size: int, missing: str, refuse: Callable[[Row], str | None] | None = None,
                     distinct_keys: bool = False) -> list[WriteResult]:
    """One result per row, in order.

    ``key_of(row)`` is the row's key (``None``/``""``: the row fails with
    ``missing``); ``refuse(row)`` may name another reason not to send it;
    ``distinct_keys`` starts a new call where a key would repeat (APIs that
    refuse duplicates within one call).
    """
    results: list[WriteResult | None] = [None] * len(rows)
    pending: list[tuple[int, Row]] = []
    for i, row in enumerate(rows):
        key = key_of(row)
        problem = missing if key in (None, "") else (refuse(row) if refuse else None)
        if problem:
            results[i] = WriteResult("" if key is None else str(key), WriteAction.FAILED,
                                     error=problem)
        else:
            pending.append((i, row))
    for chunk in _calls(pending, size, key_of if distinct_keys else None):
        answers = send([row for _, row in chunk])
        for (i, _), answer in zip(chunk, answers, strict=True):
            results[i] = answer
    return [r for r in results if r is not None]


def delete_in_batches(ids: Sequence[Any], mode: DeleteMode, send: SendIds, *, size: int,
                      refuse: Callable[[str], str | None] | None = None) -> list[WriteResult]:
    """One result per id, in order: IGNORE answers UNCHANGED without a call;
    ``refuse(id)`` may name why an id is not sent (FAILED, not sent); the other
    ids go once each (repeats share the answer), in calls of at most ``size``
    ids; ``send(ids)`` answers one result per id, in their order."""
    ids = [str(i) for i in ids]
    if mode is DeleteMode.IGNORE:
        return [WriteResult(i, WriteAction.UNCHANGED) for i in ids]
    done: dict[str, WriteResult] = {}
    pending: list[str] = []
    for record_id in dict.fromkeys(ids):
        problem = refuse(record_id) if refuse else None
        if problem:
            done[record_id] = WriteResult(record_id, WriteAction.FAILED, error=problem)
        else:
            pending.append(record_id)
    for chunk in chunks(pending, size):
        done.update(zip(chunk, send(list(chunk)), strict=True))
    return [done[i] for i in ids]


def _calls(pending: list[tuple[int, Row]], size: int,
           key_of: Callable[[Row], Any] | None) -> list[list[tuple[int, Row]]]:
    calls: list[list[tuple[int, Row]]] = [[]]
    seen: set[str] = set()
    for item in pending:
        key = str(key_of(item[1])) if key_of else ""
        if len(calls[-1]) >= max(1, size) or (key_of and key in seen):
            calls.append([])
            seen = set()
        calls[-1].append(item)
        seen.add(key)
    return [c for c in calls if c]


def required_setting(value: Any, problem: str) -> Any:
    """``value`` (a stream's external id field, say); a ConfigError saying ``problem``
    when it is not set (writing needs it)."""
    if not value:
        raise ConfigError(problem)
    return value


def json_default(system: str, *, decimal: Callable[[Decimal], Any] = float,
                 moment: Callable[[dt.datetime], Any] = utc_text) -> Callable[[Any], Any]:
    """The ``json.dumps(default=...)`` for a system's request bodies: decimals by
    ``decimal`` (float by default), datetimes by ``moment`` (UTC millis text by
    default), dates as ISO; anything else is a TypeError naming ``system``."""

    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return decimal(value)
        if isinstance(value, dt.datetime):
            return moment(value)
        if isinstance(value, dt.date):
            return value.isoformat()
        raise TypeError(f"cannot send {type(value).__name__} to {system}")

    return default

"""Creating records without doubling one when the answer is lost, written once.

A create is not idempotent: sent again after its answer was lost in transit (a
timeout, a 5xx, a cut body), it may make the record a second time. So a create
goes out once (through :meth:`crm2erp.http.HttpClient.single_attempt`); when it
fails in transit (a :class:`RetriableError`) the connector waits by its retry
policy (:meth:`HttpClient.backoff`, paced and counted like every retry), asks
the system which of the keys exist now, and sends only the others again. After
``retry.max_attempts`` sends the last error stops the run: nothing was lost,
and the next run finds what was created.
"""

from __future__ import annotations

__all__ = ["create_isolated", "create_unless_found"]

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from crm2erp.connectors.toolkit.batches import chunks, isolate
from crm2erp.errors import RecordError, RetriableError
from crm2erp.http import HttpClient

log = logging.getLogger(__name__)

#: ``create(keys)`` / ``find(keys)``: ``{key: outcome}``
Outcomes = Callable[[list[str]], Mapping[str, Any]]


def create_unless_found(keys: list[str], create: Outcomes, find: Outcomes, *,
                        client: HttpClient, what: str) -> dict[str, Any]:
    """``{key: outcome}`` for every one of ``keys`` (the record keys to create).

    ``create(keys)`` sends one create call for those keys and answers an outcome
    per key (a new id, an error text...); ``find(keys)`` answers an outcome for
    the keys that exist now, after a lost answer. ``what`` ("Odoo create on
    res.partner") names the call in the log and the waits.
    """
    outcomes: dict[str, Any] = {}
    remaining = list(keys)
    attempts = client.settings.retry.max_attempts
    for attempt in range(1, attempts + 1):
        try:
            outcomes.update(create(remaining))
            return outcomes
        except RetriableError as exc:
            if attempt >= attempts:
                raise
            log.info("%s failed in transit (%s); checking what was created before "
                     "retrying", what, exc)
            client.backoff(attempt, where=what)
            found = find(remaining)
            outcomes.update(found)
            remaining = [key for key in remaining if key not in found]
            if not remaining:
                return outcomes
    return outcomes


def create_isolated(items: Mapping[str, Any], create: Callable[[list[Any]], Sequence[Any]],
                    find: Outcomes, *, client: HttpClient, what: str,
                    refused: type[Exception] | tuple[type[Exception], ...] = RecordError,
                    message: Callable[[Exception], str] = str,
                    batch_size: int | None = None) -> dict[str, int | str]:
    """``{key: new record id}`` for every key of ``items`` the system created, ``{key: error
    text}`` for each it refused, for systems that create a list in one transaction.

    ``create(values)`` sends one create call for the values of some keys and answers
    the new ids in their order; a call the system refuses (``refused``) is split until
    the refused records are alone (:func:`~crm2erp.connectors.toolkit.batches.isolate`,
    ``message(error)`` their error text); a lost answer is :func:`create_unless_found`'s
    (``find(keys)``: ``{key: record id}`` of the keys that exist now). ``batch_size``: at
    most that many records a call (all in one without it). No call for no items.
    """
    def send(keys: list[str]) -> dict[str, int | str]:
        outcomes: dict[str, int | str] = {}
        for batch in chunks(keys, batch_size) if batch_size else [keys]:
            for sent, ids in isolate(batch, lambda part: create([items[key] for key in part]),
                                     outcomes.__setitem__, refused=refused, message=message):
                outcomes.update((key, int(new_id))
                                for key, new_id in zip(sent, ids, strict=True))
        return outcomes

    return create_unless_found(list(items), send, find, client=client, what=what)

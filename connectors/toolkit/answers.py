"""The per-record answers of a batch write call, written once.

A batch endpoint that answers one JSON object per record sent, in order
(Salesforce's sObject Collections, a bulk upsert's ``results``), is only usable
when it answered exactly one per record: :func:`item_answers` decodes the answer
and refuses any other shape, a redirect (a wrong base URL or API version) and a
refusal. An all-or-none call rolls every record back when
one is refused and marks the innocent ones as only rolled back:
:func:`resend_rolled_back` sends those again without the refused ones, so only
the records at fault keep a failed answer.
"""

from __future__ import annotations

__all__ = ["item_answers", "resend_rolled_back"]

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import requests

from crm2erp.connectors.toolkit.targets import call_failed
from crm2erp.errors import FatalError, RetriableError
from crm2erp.http import decode_json

log = logging.getLogger(__name__)

T = TypeVar("T")
Answer = TypeVar("Answer")


def item_answers(system: str, what: str, resp: requests.Response, count: int,
                 noun: str = "records", *, redirect_hint: str = "") -> list[dict[str, Any]]:
    """The answers of a batch call (``what``: ``"upsert into Account"``) that answers one
    JSON object per item sent, in order: ``count`` of them.

    A FatalError when there are none: a redirect (3xx: where it points, or the body,
    then ``redirect_hint``), a refusal (:func:`~.targets.call_failed`), or a body that
    is not a list of ``count`` objects.
    """
    if 300 <= resp.status_code < 400:
        where = resp.headers.get("Location")
        raise FatalError(f"{system} answered the {what} with HTTP {resp.status_code} "
                         f"{resp.reason or ''} instead of results "
                         f"({f'to {where}' if where else (resp.text.strip()[:300] or 'no body')})"
                         f"{redirect_hint}")
    if resp.status_code >= 400:
        raise call_failed(system, what, resp)
    answers = decode_json(resp)
    if not isinstance(answers, list) or len(answers) != count or \
            not all(isinstance(a, dict) for a in answers):
        raise FatalError(f"{system} {what} answered "
                         f"{len(answers) if isinstance(answers, list) else 'no'} "
                         f"results for {count} {noun}: {resp.text[:300]}")
    return answers


def resend_rolled_back(items: Sequence[T], call: Callable[[list[T]], Sequence[Answer]],
                       rolled_back: Callable[[Answer], bool], *, system: str,
                       what: str) -> list[Answer]:
    """One answer per item, in order; ``call(items)`` answers one per item it sends.

    The items whose answer is ``rolled_back`` (fine, but undone with a refused one)
    are sent again without the others, until no answer is only a roll-back. A call
    that rolled back every item sent names no culprit: a RetriableError naming
    ``what``, and the batch is tried again next run.
    """
    answers: dict[int, Answer] = {}
    todo = list(range(len(items)))
    while todo:
        answers.update(zip(todo, call([items[i] for i in todo]), strict=True))
        rolled = [i for i in todo if rolled_back(answers[i])]
        if len(rolled) == len(todo):
            raise RetriableError(f"{system} rolled back the whole {what} without naming "
                                 "a record at fault; the batch is tried again next run")
        if rolled:
            log.info("%s %s: %d record(s) only rolled back (all or none); sending them "
                     "again without the %d refused", system, what, len(rolled),
                     len(todo) - len(rolled))
        todo = rolled
    return [answers[i] for i in range(len(items))]

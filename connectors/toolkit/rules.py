"""An error table as data: rules a connection declares, turned into the client's mapper.

The HTTP client's generic rules (429 and 5xx retried, 401 a new token) get
some APIs wrong: a 429 that means "the daily budget is used up" is not worth
retrying today. A connection lists :class:`ErrorRule`\\ s (a status, a text
the body holds, fatal or retry, a message) and :func:`build_error_mapper`
makes them the ``error_mapper`` of :class:`crm2erp.http.HttpClient`.
"""

from __future__ import annotations

__all__ = ["ErrorRule", "build_error_mapper"]

from collections.abc import Callable
from typing import Literal

import requests

from crm2erp.connectors.toolkit.config import StrictModel
from crm2erp.errors import FatalError, RetriableError
from crm2erp.http.retry import parse_retry_after


class ErrorRule(StrictModel):
    """Classify an API's error responses that the generic rules get wrong."""

    status: int | list[int]
    body_contains: str | None = None
    action: Literal["fatal", "retry"] = "fatal"
    message: str | None = None

    def statuses(self) -> list[int]:
        return [self.status] if isinstance(self.status, int) else list(self.status)


def build_error_mapper(name: str, rules: list[ErrorRule]
                       ) -> Callable[[requests.Response], Exception | None] | None:
    """An ``error_mapper`` for the HTTP client from the connection's ``errors`` rules
    (None without rules): the first rule matching the status (and the body text,
    case-insensitively) decides; ``name`` starts the message."""
    if not rules:
        return None

    def mapper(resp: requests.Response) -> Exception | None:
        for rule in rules:
            if resp.status_code not in rule.statuses():
                continue
            if rule.body_contains and rule.body_contains.lower() not in resp.text.lower():
                continue
            text = rule.message or resp.text[:300]
            if rule.action == "retry":
                return RetriableError(f"{name}: HTTP {resp.status_code}: {text}",
                                      retry_after=parse_retry_after(
                                          resp.headers.get("Retry-After")))
            return FatalError(f"{name}: HTTP {resp.status_code}: {text}. The run stopped; "
                              "committed batches are kept and the next run resumes there.")
        return None

    return mapper

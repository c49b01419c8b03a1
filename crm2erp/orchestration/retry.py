"""Airflow's retry delay from the remote system's ``Retry-After``.

A rate-limited call raises :class:`~crm2erp.errors.RetriableError` with the
wait the server asked for (``retry_after``, seconds). :class:`RetryAfterPolicy`
(Airflow's pluggable retry policy, evaluated in the worker when the task fails)
turns that wait into the delay of the next try; every other failure keeps the
task's own ``retry_delay`` and exponential backoff. The retry count is still
the task's ``retries``.
"""

from __future__ import annotations

__all__ = ["RetryAfterPolicy"]

import datetime as dt
from typing import Any

from airflow.sdk import RetryDecision, RetryPolicy

from crm2erp.errors import RetriableError


class RetryAfterPolicy(RetryPolicy):
    """Retry after the ``Retry-After`` of a rate-limited call; else Airflow's default."""

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int,
                 context: Any = None) -> RetryDecision:
        wait = exception.retry_after if isinstance(exception, RetriableError) else None
        if not wait:
            return RetryDecision.default()
        return RetryDecision.retry(
            delay=dt.timedelta(seconds=wait),
            reason=f"the remote system asked to wait {wait:.0f}s (Retry-After)")

    def serialize(self) -> dict[str, Any]:
        return {}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> RetryAfterPolicy:
        return cls()

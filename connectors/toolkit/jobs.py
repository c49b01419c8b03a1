"""Waiting for an asynchronous job, written once.

APIs that run a large query or import as a job (Salesforce Bulk API 2.0 query
jobs, export jobs) answer its id at once; the connector then asks for its state
until it is done. :func:`poll_until` is that loop: paced by the client's
injectable ``sleep`` and bounded by a timeout the user sets.
"""

from __future__ import annotations

__all__ = ["poll_until"]

import time
from collections.abc import Callable

from crm2erp.errors import FatalError


def poll_until(done: Callable[[], bool], *, timeout: float, interval: float,
               sleep: Callable[[float], None], expired: str) -> None:
    """Call ``done()`` until it answers True, sleeping ``interval`` seconds between calls;
    ``FatalError(expired)`` when it still answers False after ``timeout`` seconds.
    ``done`` raises the connector's error for a job that failed."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise FatalError(expired)
        sleep(interval)

"""A thread-safe token bucket that keeps one connection under its request rate.

Being polite client-side is cheaper than being throttled server-side: a 429
costs a round trip and a wait, and some APIs (Salesforce, HubSpot) count
rejected calls against the daily quota too.
"""

from __future__ import annotations

__all__ = ["TokenBucket"]

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; one token per request.

    ``acquire()`` reserves a token and sleeps until it is due, so concurrent
    callers queue fairly instead of spinning. ``clock`` and ``sleep`` are
    injectable for unit tests.
    """

    def __init__(self, rate: float, burst: int = 1, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate <= 0:
            raise ValueError("rate must be > 0 requests per second")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()
        self.waited = 0.0  # total seconds spent waiting, for benchmarks

    def acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens`` (waiting if needed); returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= tokens
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
            self.waited += wait
        if wait > 0:
            self._sleep(wait)
        return wait

"""Unit tests of the pure pieces: backoff arithmetic, Retry-After, the token bucket."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from crm2erp.http.ratelimit import TokenBucket
from crm2erp.http.retry import backoff_delay, parse_retry_after


def test_full_jitter_stays_under_the_exponential_cap():
    rng = random.Random(1)
    for attempt, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (10, 30.0)]:
        draws = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in draws)
        assert max(draws) > cap * 0.8  # really spread over the range, not fixed
    assert backoff_delay(3, 0.0, 10.0) == 0.0


def test_retry_after_seconds_and_http_date():
    now = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_allows_burst_then_paces():
    clock = FakeClock()
    bucket = TokenBucket(10, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        assert bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(0.1)
    assert bucket.acquire() == pytest.approx(0.1)
    clock.now += 10  # idle: refills to the burst, not beyond
    assert [bucket.acquire() for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(0.1)]
    assert clock.now == pytest.approx(10.3)


def test_token_bucket_rejects_nonsense():
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(1, burst=0)

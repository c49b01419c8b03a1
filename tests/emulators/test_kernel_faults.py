"""The emulator kernel's fault controls: what take_fault does with each queued fault."""

from __future__ import annotations

import random
import threading

import pytest

from crm2erp.emulators.kernel.emulation import FaultInjection, Reply


class _App(FaultInjection):
    def __init__(self, **options):
        self._lock = threading.Lock()
        self.init_faults(random.Random(3), **options)

    @staticmethod
    def refusal(status: int, retry_after: int | None) -> Reply:
        return Reply(status, {"error": "vendor shape"}, {"Retry-After": str(retry_after)})


def test_a_queued_status_refuses_the_request_in_the_vendors_shape():
    app = _App()
    app.fail_next(429, retry_after=7, on="/accounts")
    assert app.take_fault("/contacts", app.refusal) is False      # another path: no fault
    with pytest.raises(Reply) as refused:
        app.take_fault("/accounts", app.refusal)
    assert (refused.value.status, refused.value.body, refused.value.headers) == \
        (429, {"error": "vendor shape"}, {"Retry-After": "7"})
    assert app.faults_pending == 0 and app.faults_injected == 1


def test_truncate_lets_the_request_run_and_asks_for_a_cut_answer():
    app = _App()
    app.fail_next("truncate")
    assert app.take_fault("/x", app.refusal) is True
    assert app.take_fault("/x", app.refusal) is False


def test_a_queued_reply_is_answered_as_it_is():
    app = _App()
    app.reply_next(400, {"documented": "error"}, {"X-Vendor": "1"})
    with pytest.raises(Reply) as answered:
        app.take_fault("/x", app.refusal)
    assert (answered.value.status, answered.value.body, answered.value.headers) == \
        (400, {"documented": "error"}, {"X-Vendor": "1"})


def test_drawn_faults_follow_the_seeded_rate_and_requests_are_counted():
    app = _App(fault_rate=1.0, fault_kinds=(503,))
    with pytest.raises(Reply) as refused:
        app.take_fault("/x", app.refusal)
    assert refused.value.status == 503
    app.count_request()
    app.count_request()
    assert app.requests_served == 2

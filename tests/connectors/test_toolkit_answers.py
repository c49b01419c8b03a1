"""Toolkit pieces of batch writes and async reads: one answer per record
(:mod:`~crm2erp.connectors.toolkit.answers`), records only rolled back sent again,
polling a job (:mod:`~crm2erp.connectors.toolkit.jobs`) and pages a header names
(:func:`~crm2erp.connectors.toolkit.paging.header_pages`)."""

from __future__ import annotations

import json

import pytest
import requests

from crm2erp.connectors.toolkit import jobs
from crm2erp.connectors.toolkit.answers import item_answers, resend_rolled_back
from crm2erp.connectors.toolkit.jobs import poll_until
from crm2erp.connectors.toolkit.paging import header_pages
from crm2erp.errors import FatalError, RetriableError


def response(body: object = None, headers: dict[str, str] | None = None,
             text: str | None = None, status: int = 200) -> requests.Response:
    resp = requests.Response()
    resp.status_code, resp.reason = status, "Multiple Choices" if status == 300 else "OK"
    resp._content = (text if text is not None else json.dumps(body)).encode()
    resp.headers.update(headers or {})
    return resp


def test_item_answers_are_one_object_per_item_sent():
    assert item_answers("Acme", "upsert", response([{"id": 1}, {"id": 2}]), 2) == \
        [{"id": 1}, {"id": 2}]
    with pytest.raises(FatalError, match="Acme upsert answered 1 results for 2 records: "):
        item_answers("Acme", "upsert", response([{"id": 1}]), 2)
    with pytest.raises(FatalError, match="answered no results for 1 Ids"):
        item_answers("Acme", "delete", response({"error": "x"}), 1, "Ids")
    with pytest.raises(FatalError, match="answered 1 results"):
        item_answers("Acme", "upsert", response(["fine"]), 1)


def test_item_answers_refuse_a_redirect_and_a_refusal():
    moved = response(headers={"Location": "https://acme.example/v2"}, status=301)
    with pytest.raises(FatalError, match=r"^Acme answered the upsert with HTTP 301 OK instead "
                       r"of results \(to https://acme.example/v2\); check base_url$"):
        item_answers("Acme", "upsert", moved, 1, redirect_hint="; check base_url")
    with pytest.raises(FatalError, match=r"HTTP 300 Multiple Choices instead of results "
                       r"\(\["):
        item_answers("Acme", "upsert", response(["/a", "/b"], status=300), 1)
    with pytest.raises(FatalError, match="^Acme upsert failed with HTTP 400: "):
        item_answers("Acme", "upsert", response({"error": "bad"}, status=400), 1)


def test_records_only_rolled_back_are_sent_again_until_only_culprits_fail():
    calls: list[list[str]] = []
    bad = {"b", "d"}

    def call(items: list[str]) -> list[str]:
        calls.append(items)
        refused = bad & set(items)
        return [f"refused {i}" if i in bad else "rolled back" if refused else f"saved {i}"
                for i in items]

    answers = resend_rolled_back(list("abcde"), call, lambda a: a == "rolled back",
                                 system="Acme", what="upsert")
    assert answers == ["saved a", "refused b", "saved c", "refused d", "saved e"]
    assert calls == [list("abcde"), ["a", "c", "e"]]
    assert resend_rolled_back([], call, bool, system="Acme", what="upsert") == []


def test_a_call_that_rolls_back_every_record_is_retried_later():
    with pytest.raises(RetriableError, match="Acme rolled back the whole upsert"):
        resend_rolled_back([1, 2], lambda items: ["rolled back"] * len(items),
                           lambda a: a == "rolled back", system="Acme", what="upsert")


def test_poll_until_sleeps_between_checks_and_stops_at_the_timeout(monkeypatch):
    answers, slept = iter([False, False, True]), []
    poll_until(lambda: next(answers), timeout=60, interval=2, sleep=slept.append,
               expired="never")
    assert slept == [2, 2]
    clock = iter([0.0, 5.0, 11.0])
    monkeypatch.setattr(jobs.time, "monotonic", lambda: next(clock))
    with pytest.raises(FatalError, match="job 7 did not finish"):
        poll_until(lambda: False, timeout=10, interval=1, sleep=slept.append,
                   expired="job 7 did not finish")
    assert slept == [2, 2, 1]


class Pages:
    """A client answering scripted pages and recording each request's params."""

    def __init__(self, *locators: str | None):
        self.locators, self.params = list(locators), []

    def request(self, method: str, url: str, *, params: dict, **kwargs: object):
        self.params.append(params)
        locator = self.locators.pop(0)
        return response(text=f"page {len(self.params)}",
                        headers={"Sforce-Locator": locator} if locator is not None else {})


@pytest.mark.parametrize("end", ["null", None, ""])
def test_header_pages_follow_the_header_until_the_last_page(end):
    client = Pages("p2", "p3", end)
    pages = header_pages(client, "/results", {"max": 10}, header="Sforce-Locator",
                         param="locator")
    assert [p.text for p in pages] == ["page 1", "page 2", "page 3"]
    assert client.params == [{"max": 10}, {"max": 10, "locator": "p2"},
                             {"max": 10, "locator": "p3"}]

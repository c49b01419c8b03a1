"""The toolkit's create of a list in one transaction: refused records isolated, a lost
answer re-checked before anything is sent again."""

from __future__ import annotations

from crm2erp.connectors.toolkit.creates import create_isolated
from crm2erp.errors import RecordError, RetriableError
from crm2erp.http import HttpClient, HttpSettings, RetryConfig


def test_create_isolated_fails_only_refused_records_and_never_creates_twice():
    client = HttpClient(HttpSettings(retry=RetryConfig(max_attempts=3)), sleep=lambda _: None)
    stored: dict[str, int] = {}
    calls: list[list[str]] = []
    lost = [True]

    def create(values):             # one transaction: a bad record refuses the whole call
        calls.append([v["name"] for v in values])
        bad = [v["name"] for v in values if v["name"].startswith("bad")]
        if bad:
            raise RecordError(f"{bad[0]} refused")
        ids = [stored.setdefault(v["name"], len(stored) + 1) for v in values]
        if lost[0] and len(values) > 1:
            lost[0] = False
            raise RetriableError("connection reset")   # committed, the answer is lost
        return [str(i) for i in ids]                   # ids as the system sends them

    def find(keys):
        return {key: stored[key] for key in keys if key in stored}

    items = {key: {"name": key} for key in ["a", "b", "bad1", "c"]}
    outcomes = create_isolated(items, create, find, client=client, what="create")
    assert outcomes == {"a": 1, "b": 2, "bad1": "bad1 refused", "c": 3}
    assert [k for k in items if isinstance(outcomes[k], int)] == ["a", "b", "c"]
    assert sorted(stored) == ["a", "b", "c"]     # each created once
    assert calls == [["a", "b", "bad1", "c"], ["a", "b"],   # refused: split; answer lost
                     ["bad1", "c"], ["bad1"], ["c"]]        # only the rest sent again
    assert client.stats.retries == 1
    assert create_isolated({}, create, find, client=client, what="create") == {}
    assert len(calls) == 5                                   # no call for no items


def test_create_isolated_sends_at_most_batch_size_records_a_call():
    client = HttpClient(HttpSettings(), sleep=lambda _: None)
    calls: list[list[str]] = []

    def create(values):
        calls.append([v["name"] for v in values])
        if any(v["name"] == "bad" for v in values):
            raise RecordError("bad refused")
        return [ord(v["name"][0]) for v in values]

    items = {key: {"name": key} for key in ["a", "b", "c", "bad", "e"]}
    outcomes = create_isolated(items, create, lambda keys: {}, client=client, what="create",
                               batch_size=2)
    assert outcomes == {"a": 97, "b": 98, "c": 99, "bad": "bad refused", "e": 101}
    assert calls == [["a", "b"], ["c", "bad"], ["c"], ["bad"], ["e"]]

"""Paginators and the less common auth strategies against a real loopback server."""

from __future__ import annotations

import base64
import json

import pytest

from crm2erp.errors import ConfigError, FatalError
from crm2erp.http import (
    CursorPaginator,
    HttpClient,
    HttpSettings,
    NextLinkPaginator,
    ODataPaginator,
    OffsetPaginator,
    PagePaginator,
    build_auth,
)
from crm2erp.http.config import HttpConnectionConfig

ITEMS = list(range(23))


def client(app, auth=None):
    return HttpClient(HttpSettings(), base_url=app.base_url, auth=auth, sleep=lambda s: None)


def all_records(paginator, c, url, params=None):
    return [r for page in paginator.pages(c, url, params) for r in paginator.records(page)]


def test_next_link_in_body(scripted):
    def handler(r):
        start = int(r["query"].get("from", 0))
        body = {"items": ITEMS[start:start + 10]}
        if start + 10 < len(ITEMS):
            body["links"] = {"next": f"/list?from={start + 10}"}
        return 200, body, {}

    scripted.handle("/list", handler)
    assert all_records(NextLinkPaginator("links.next", "items"), client(scripted), "/list") == ITEMS
    assert len(scripted.calls("/list")) == 3


def test_next_link_in_link_header(scripted):
    def handler(r):
        page = int(r["query"].get("page", 1))
        headers = {"Link": f'<{scripted.base_url}/h?page={page + 1}>; rel="next"'} \
            if page < 3 else {}
        return 200, [page], headers

    scripted.handle("/h", handler)
    assert all_records(NextLinkPaginator(None), client(scripted), "/h") == [1, 2, 3]


def test_cursor_after(scripted):
    def handler(r):
        after = int(r["query"].get("after", 0))
        body = {"results": ITEMS[after:after + 10], "paging": {}}
        if after + 10 < len(ITEMS):
            body["paging"] = {"next": {"after": str(after + 10)}}
        return 200, body, {}

    scripted.handle("/c", handler)
    got = all_records(CursorPaginator("paging.next.after", "after", "results"), client(scripted),
                      "/c", {"limit": 10})
    assert got == ITEMS
    assert all(r["query"]["limit"] == "10" for r in scripted.calls("/c"))


@pytest.mark.parametrize("kind", ["offset", "page"])
def test_offset_and_page(scripted, kind):
    def handler(r):
        q = r["query"]
        start = int(q["offset"]) if kind == "offset" else (int(q["page"]) - 1) * int(q["per_page"])
        size = int(q.get("limit") or q.get("per_page"))
        return 200, {"data": ITEMS[start:start + size]}, {}

    scripted.handle("/o", handler)
    paginator = OffsetPaginator(5, "data") if kind == "offset" else PagePaginator(5, "data")
    assert all_records(paginator, client(scripted), "/o") == ITEMS
    assert len(scripted.calls("/o")) == 5


@pytest.mark.parametrize("version", [2, 4])
def test_odata(scripted, version):
    def handler(r):
        skip = int(r["query"].get("$skip", 0))
        chunk = ITEMS[skip:skip + 10]
        nxt = f"{scripted.base_url}/odata?$skip={skip + 10}" if skip + 10 < len(ITEMS) else None
        if version == 4:
            body = {"value": chunk, **({"@odata.nextLink": nxt} if nxt else {})}
        else:
            body = {"d": {"results": chunk, **({"__next": nxt} if nxt else {})}}
        return 200, body, {}

    scripted.handle("/odata", handler)
    assert all_records(ODataPaginator(), client(scripted), "/odata") == ITEMS


def test_a_next_link_pointing_to_itself_stops(scripted):
    scripted.on("/loop", 200, {"items": [1], "next": "/loop"})
    with pytest.raises(FatalError, match="same next page twice"):
        all_records(NextLinkPaginator("next", "items"), client(scripted), "/loop")


def test_basic_api_key_and_session_login(scripted):
    scripted.handle("/echo", lambda r: (200, r["headers"], {}))
    basic = build_auth(HttpConnectionConfig.model_validate(
        {"auth": {"type": "basic", "username": "u", "password": "pw-1234"}}).auth)
    got = client(scripted, basic).get_json("/echo")
    assert base64.b64decode(got["Authorization"].split()[1]) == b"u:pw-1234"
    key = build_auth(HttpConnectionConfig.model_validate(
        {"auth": {"type": "api_key", "key": "k-5678", "header": "X-Api-Token"}}).auth)
    assert client(scripted, key).get_json("/echo")["X-Api-Token"] == "k-5678"

    scripted.handle("/login", lambda r: (200, {"session": {"id": "sess-" + json.loads(
        r["body"])["user"]}}, {}))
    login = build_auth(HttpConnectionConfig.model_validate({"auth": {
        "type": "session_login", "login_url": f"{scripted.base_url}/login", "username": "bob",
        "password": "pw-9999", "username_field": "user", "token_path": "session.id",
        "header": "X-Session", "prefix": ""}}).auth)
    assert client(scripted, login).get_json("/echo")["X-Session"] == "sess-bob"


def test_auth_config_errors():
    with pytest.raises(ValueError, match="exactly one"):
        HttpConnectionConfig.model_validate({"auth": {"type": "jwt_bearer", "client_id": "c",
                                                      "subject": "s"}})
    conf = HttpConnectionConfig.model_validate({"auth": {
        "type": "client_credentials", "client_id": "c", "client_secret": "topsecret-val"}})
    with pytest.raises(ConfigError, match="token_url"):
        build_auth(conf.auth)
    assert "topsecret-val" not in repr(conf)  # SecretStr hides it

"""Every paging style of the declarative REST connector reads every record exactly once,
also when records are added while the listing is read.

The listings are the demo CRM API's (``crm2erp.emulators.rest.app``): Pipedrive v1
(offset + ``more_items_in_collection``) and v2 (keyset cursor), and the same organizations
in EspoCRM's (offset + ``total``), Django REST framework's (page + ``count``, ``next``) and
GitHub's (page, RFC 8288 ``Link`` header) envelopes.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm2erp.connectors import create_connector
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.emulators.rest.app import CLIENT_ID, CLIENT_SECRET, make_app
from crm2erp.errors import ConfigError


def styles(size: int) -> dict[str, dict]:
    """One stream per paging style, ``size`` records a page."""
    return {
        "offset_has_more": {
            "path": "/v1/organizations", "params": {"sort": "id ASC"}, "records": "data",
            "paginator": {"type": "offset", "limit": size, "offset_param": "start",
                          "has_more": "additional_data.pagination.more_items_in_collection",
                          "order_by": "id"}},
        "offset_total": {
            "path": "/api/v1/Account", "records": "list",
            "paginator": {"type": "offset", "limit": size, "limit_param": "maxSize",
                          "total": "total", "order_by": "id"}},
        "offset_until_empty": {
            "path": "/api/v1/Account", "records": "list",
            "paginator": {"type": "offset", "limit": size, "limit_param": "maxSize",
                          "order_by": "id"}},
        "page_total": {
            "path": "/drf/organizations/", "records": "results",
            "paginator": {"type": "page", "size": size, "size_param": "page_size",
                          "total": "count", "order_by": "id"}},
        "page_until_empty": {
            "path": "/gh/organizations",
            "paginator": {"type": "page", "size": size, "order_by": "id"}},
        "next_link_body": {
            "path": "/drf/organizations/", "params": {"page_size": size}, "records": "results",
            "paginator": {"type": "next_link", "next": "next"}},
        "link_header": {
            "path": "/gh/organizations", "params": {"per_page": size},
            "paginator": {"type": "next_link"}},
        "cursor": {
            "path": "/api/v2/organizations", "records": "data",
            "paginator": {"type": "cursor", "cursor_path": "additional_data.next_cursor",
                          "param": "cursor", "limit": size}},
    }


class Switch:
    """One server for the module; each example plugs a fresh emulator in."""

    def __init__(self):
        self.app = None
        self.base_url = ""

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def switch():
    box = Switch()
    with serve_wsgi(box):
        yield box


def fresh(switch: Switch, organizations: int):
    app = make_app(seed=5, organizations=organizations)
    app.base_url, switch.app = switch.base_url, app
    return app


def connector(base_url: str, size: int):
    return create_connector("rest", {
        "base_url": base_url, "name": "demo-crm",
        "auth": {"type": "client_credentials", "client_id": CLIENT_ID,
                 "client_secret": CLIENT_SECRET, "token_url": "/oauth/token"},
        "retry": {"max_attempts": 2, "backoff_base": 0.001, "backoff_max": 0.01},
        "streams": styles(size)})


def read_keys(conn, stream: str) -> list[str]:
    return [str(row["id"]) for batch in conn.read(stream, batch_size=7) for row in batch.rows]


@pytest.mark.parametrize("style", list(styles(1)))
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(organizations=st.integers(0, 30), size=st.integers(1, 8),
       added=st.lists(st.integers(0, 3), max_size=6))
def test_each_paging_style_reads_every_record_once_while_records_are_added(
        switch, style, organizations, size, added):
    app = fresh(switch, organizations)
    pending, new_ids = list(added), []

    def add_during_the_run():   # after page n is cut, added[n] new organizations appear
        new_ids.append([app.add(f"Added during the run {len(app.orgs) + 1}")
                        for _ in range(pending.pop(0) if pending else 0)])

    app.on_list = add_during_the_run
    with connector(switch.base_url, size) as conn:
        keys = read_keys(conn, style)
    assert len(keys) == len(set(keys))                         # exactly once
    read = {int(k) for k in keys}
    assert read >= set(range(1, organizations + 1))             # none of the first skipped
    assert read <= set(app.orgs)
    if style.startswith(("offset", "cursor")):
        # positions move on by what was received: a record added during the run is read
        # in the run, unless it came after the last page was cut (the next run reads it)
        assert read == set(app.orgs) - set(new_ids[-1])


def test_an_api_that_caps_the_page_size_loses_nothing(switch):
    app = fresh(switch, 260)    # EspoCRM answers at most 200 records a page
    with connector(switch.base_url, 250) as conn:
        for style in ("offset_total", "offset_until_empty"):
            assert sorted(read_keys(conn, style), key=int) == [str(i) for i in sorted(app.orgs)]


def test_offset_paging_over_newest_first_stops_with_a_configuration_error(switch):
    fresh(switch, 12)
    settings_ = {"base_url": switch.base_url, "name": "demo-crm",
                 "auth": {"type": "client_credentials", "client_id": CLIENT_ID,
                          "client_secret": CLIENT_SECRET, "token_url": "/oauth/token"},
                 "streams": {"orgs": {"path": "/v1/organizations", "records": "data",
                                      "params": {"sort": "id DESC"}, "paginator": {
                                          "type": "offset", "offset_param": "start",
                                          "limit": 5, "order_by": "id"}}}}
    with create_connector("rest", settings_) as conn:
        with pytest.raises(ConfigError, match=r"not sorted by 'id' ascending \(11 came after 12\)"):
            read_keys(conn, "orgs")

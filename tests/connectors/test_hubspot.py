"""HubSpot connector specifics, over the real loopback emulator."""

from __future__ import annotations

import json

import pytest
import requests

from crm2erp.connectors import create_connector
from crm2erp.connectors.base import Cursor, WriteAction
from crm2erp.connectors.hubspot import HubSpotConfig, HubSpotConnector
from crm2erp.connectors.toolkit.ordering import OrderedBatcher
from crm2erp.connectors.toolkit.timestamps import iso_millis
from crm2erp.emulators.hubspot.app import TOKEN, make_app
from crm2erp.emulators.kernel.server import emulator_process, serve_wsgi
from crm2erp.errors import ConfigError, FatalError

FAST_RETRY = {"max_attempts": 5, "backoff_base": 0.001, "backoff_max": 0.01}


def config(url, **extra):
    return HubSpotConfig.model_validate({
        "base_url": url, "retry": FAST_RETRY, "search_requests_per_second": None,
        "auth": {"type": "bearer", "token": TOKEN}, **extra})


class Recorder:
    """WSGI middleware keeping (method, path, query, json body) of every call."""

    def __init__(self, app):
        self.app, self.calls = app, []

    @property
    def base_url(self):
        return self.app.base_url

    @base_url.setter
    def base_url(self, value):
        self.app.base_url = value

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        import io
        environ["wsgi.input"] = io.BytesIO(raw)
        self.calls.append((environ["REQUEST_METHOD"], environ["PATH_INFO"],
                           environ.get("QUERY_STRING", ""), json.loads(raw) if raw else None))
        return self.app(environ, start_response)


@pytest.fixture
def portal():
    app = make_app(seed=5, companies=60, contacts_per_company=2, line_items_per_deal=3)
    rec = Recorder(app)
    with serve_wsgi(rec):
        yield app, rec


# -- search, the cap, ordering ------------------------------------------------

def test_incremental_search_body_uses_gte_epoch_ms_and_one_ascending_sort(portal):
    app, rec = portal
    conn = HubSpotConnector(config(app.base_url))
    list(conn.read("contacts", Cursor("2024-01-01T00:00:05.000Z", None)))
    searches = [body for method, path, _, body in rec.calls if path.endswith("/search")]
    assert searches, "incremental reads go through the search API"
    body = searches[0]
    assert body["filterGroups"] == [{"filters": [{"propertyName": "lastmodifieddate",
                                                  "operator": "GTE", "value": "1704067205000"}]}]
    assert body["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    assert "email" in body["properties"] and body["limit"] == 200


@pytest.mark.parametrize("same_stamp", [1, 500])
def test_search_cap_is_worked_around_without_losing_or_repeating_rows(same_stamp):
    # cap 120 with pages of 50: every search restarts twice; same_stamp=500 puts all
    # 300 contacts in one instant, which must be paged by hs_object_id instead
    app = make_app(seed=2, companies=300, contacts_per_company=1, search_cap=120,
                   same_stamp=same_stamp)
    with serve_wsgi(app):
        conn = HubSpotConnector(config(app.base_url, page_size=50, search_cap=120))
        batches = list(conn.read("contacts", batch_size=40))
    keys = [r["id"] for b in batches for r in b.rows]
    assert len(keys) == len(set(keys)) == 300
    assert conn.reader.restarts >= 2
    positions = [(b.cursor.value, b.cursor.key) for b in batches]
    assert positions == sorted(positions)


def test_ordered_batcher_sorts_ties_and_merges_deletions():
    batcher = OrderedBatcher(2, Cursor("2024-01-01T00:00:01Z", "b"),
                             deletions=[("2024-01-01T00:00:01.000Z", "c"),
                                        ("2024-01-01T00:00:03.000Z", "z")])
    stamp1, stamp2 = iso_millis("2024-01-01T00:00:01Z"), iso_millis(1704067202000)
    out = [b for key in ("d", "a", "b") for b in batcher.add(stamp1, key, {"id": key})]
    out += [b for b in batcher.add(stamp2, "x", {"id": "x"})]
    out += list(batcher.finish())
    assert [([r["id"] for r in b.rows], b.deleted_keys) for b in out] == \
        [(["d"], ["c"]), (["x"], ["z"])]
    assert out[-1].cursor == Cursor("2024-01-01T00:00:03.000Z", "z")


# -- associations and the list endpoint -----------------------------------------

def test_associations_come_from_the_v4_batch_read(portal):
    app, rec = portal
    conn = HubSpotConnector(config(app.base_url))
    contacts = [r for b in conn.read("contacts", batch_size=500) for r in b.rows]
    assert all(r["associations"]["companies"] == [r["associatedcompanyid"]] for r in contacts)
    deals = [r for b in conn.read("deals") for r in b.rows]
    assert all(len(r["associations"]["line_items"]) == 3 for r in deals)
    v4 = [p for _, p, _, _ in rec.calls if p.startswith("/crm/v4/associations/")]
    assert "/crm/v4/associations/deals/line_items/batch/read" in v4


def test_children_embed_line_items_through_associations_and_batch_read(portal):
    app, rec = portal
    conn = HubSpotConnector(config(app.base_url))     # default deals: lines embedded
    rec.calls.clear()
    deals = [r for b in conn.read("deals", batch_size=25) for r in b.rows]
    assert len(deals) == 60 and all(len(r["lines"]) == 3 for r in deals)
    for deal in deals:
        assert [line["id"] for line in deal["lines"]] == deal["associations"]["line_items"]
        assert all(line["hs_sku"].startswith("SKU-") and line["quantity"] for line in deal["lines"])
        assert sum(float(line["quantity"]) * float(line["price"]) for line in deal["lines"]) \
            == pytest.approx(float(deal["amount"]))
    reads = [body for _, p, _, body in rec.calls if p == "/crm/v3/objects/line_items/batch/read"]
    # 3 batches of 25/25/10 deals -> 75/75/30 line items -> 100-id chunks: 1 + 1 + 1
    assert len(reads) == 3 and all(len(b["inputs"]) <= 100 for b in reads)
    assert "hs_sku" in reads[0]["properties"]
    # the full-read list path embeds them too
    listed = HubSpotConnector(config(app.base_url, full_read="list"))
    assert all(len(r["lines"]) == 3 for b in listed.read("deals") for r in b.rows)


def test_children_config_forms_and_errors():
    base = {"auth": {"type": "bearer", "token": "t"}}
    short = HubSpotConfig.model_validate({**base, "streams": {
        "deals": {"object_type": "deals", "properties": ["dealname"], "children": ["items"]},
        "items": {"object_type": "line_items", "properties": ["quantity"]}}})
    assert short.streams["deals"].children["items"].stream == "items"
    with pytest.raises(ValueError, match="'nothing'"):
        HubSpotConfig.model_validate({**base, "streams": {
            "deals": {"object_type": "deals", "properties": ["x"], "children": ["nothing"]}}})


def test_update_by_id_sends_100_per_call_and_reports_unknown_ids(portal):
    app, rec = portal
    conn = HubSpotConnector(config(app.base_url))
    companies = app.portal.records("companies")
    rows = [{"id": c["id"], "erp_id": f"CUST-{n:04d}"} for n, c in enumerate(companies)]
    rows += [{"id": "19999999999", "erp_id": "CUST-NONE"},
             {"id": companies[1]["id"], "industry": "NOT_AN_INDUSTRY"},
             {"erp_id": "no id"}]
    rec.calls.clear()
    count = app.count("companies")
    results = conn.update("companies", rows)
    updates = [b for _, p, _, b in rec.calls if p == "/crm/v3/objects/companies/batch/update"]
    assert [len(b["inputs"]) for b in updates] == [61, 1]   # companies[1] twice: 2 calls
    assert [r.action for r in results[:60]] == [WriteAction.UPDATED] * 60
    assert results[0].target_id == companies[0]["id"]
    assert "OBJECT_NOT_FOUND" in results[60].error
    assert "INVALID_OPTION" in results[61].error
    assert results[62].action is WriteAction.FAILED and "no id" in results[62].error
    assert app.count("companies") == count
    assert app.portal.find("companies", "erp_id", "CUST-0005")["id"] == companies[5]["id"]
    # a unique value another record holds is refused for that record only
    clash = conn.update("companies", [{"id": companies[2]["id"], "erp_id": "CUST-0005"}])
    assert clash[0].action is WriteAction.FAILED and "CONFLICTING_UNIQUE_VALUE" in clash[0].error
    big = conn.update("companies", [{"id": c["id"], "zip": "10115"} for c in companies] * 2)
    assert len(big) == 120 and all(r.ok for r in big)   # duplicates go in another call


def test_full_read_through_the_list_endpoint_sets_the_watermark_at_the_end(portal):
    app, rec = portal
    conn = HubSpotConnector(config(app.base_url, full_read="list"))
    batches = list(conn.read("deals", batch_size=25))
    assert all(b.cursor is None for b in batches[:-1]) and batches[-1].cursor is not None
    rows = [r for b in batches for r in b.rows]
    assert len(rows) == app.count("deals")
    assert all(len(r["associations"]["line_items"]) == 3 for r in rows)
    lists = [q for _, p, q, _ in rec.calls if p == "/crm/v3/objects/deals"]
    assert lists and "associations=companies%2Cline_items" in lists[0]
    assert not [p for _, p, _, _ in rec.calls if p.endswith("/search")]


# -- writing --------------------------------------------------------------------

def test_batch_upsert_sends_100_per_call_and_is_keyed_by_id_property(portal):
    app, rec = portal
    conn = HubSpotConnector(config(app.base_url))
    rows = app.sample_rows("companies", 230)
    first = conn.upsert("companies", rows)
    calls = [body for _, p, _, body in rec.calls if p.endswith("/batch/upsert")]
    assert [len(b["inputs"]) for b in calls] == [100, 100, 30]
    assert {i["idProperty"] for b in calls for i in b["inputs"]} == {"erp_id"}
    assert [r.action for r in first] == [WriteAction.CREATED] * 230
    assert len({r.target_id for r in first}) == 230
    again = conn.upsert("companies", rows[:3])
    assert [r.action for r in again] == [WriteAction.UPDATED] * 3
    assert conn.lookup("companies", [rows[0]["erp_id"]])[rows[0]["erp_id"]]["id"] == \
        first[0].target_id


def test_refused_inputs_fail_alone_and_a_refused_batch_fails_every_row(portal):
    app, _ = portal
    conn = HubSpotConnector(config(app.base_url))
    rows = app.sample_rows("contacts", 2)
    rows.insert(1, app.invalid_row("contacts"))
    results = conn.upsert("contacts", rows)
    assert [r.ok for r in results] == [True, False, True]
    assert "INVALID_EMAIL" in results[1].error
    dupes = app.sample_rows("companies", 1) * 2
    results = conn.upsert("companies", dupes)
    assert [r.action for r in results] == [WriteAction.FAILED] * 2
    assert "Duplicate IDs" in results[0].error


def test_daily_limit_is_fatal_and_says_when_to_resume(portal):
    app, _ = portal
    conn = HubSpotConnector(config(app.base_url))
    app.exhaust_limit()
    with pytest.raises(FatalError, match="daily API limit"):
        list(conn.read("companies"))


def test_rate_limit_headers_are_read(portal):
    app, _ = portal
    conn = HubSpotConnector(config(app.base_url))
    list(conn.read("products"))
    assert conn.rate_limits["daily"] == 250_000
    assert 0 < conn.rate_limits["daily_remaining"] < 250_000


def test_check_names_missing_properties(portal):
    app, _ = portal
    conn = HubSpotConnector(config(app.base_url, streams={
        "companies": {"object_type": "companies", "properties": ["name", "no_such_prop"]}}))
    with pytest.raises(ConfigError, match="no_such_prop"):
        conn.check()


def test_registered_as_entry_point_and_config_is_validated(portal):
    app, _ = portal
    conn = create_connector("hubspot", {"base_url": app.base_url,
                                        "auth": {"type": "bearer", "token": TOKEN}})
    assert isinstance(conn, HubSpotConnector)
    with pytest.raises(ConfigError, match="page_size"):
        create_connector("hubspot", {"page_size": 500})


def test_emulator_speaks_hubspot_errors(portal):
    app, _ = portal
    resp = requests.get(f"{app.base_url}/crm/v3/objects/companies")
    assert resp.status_code == 401 and resp.json()["category"] == "INVALID_AUTHENTICATION"
    app.fail_next(429, retry_after=2)
    resp = requests.get(f"{app.base_url}/crm/v3/objects/companies",
                        headers={"Authorization": f"Bearer {TOKEN}"})
    body = resp.json()
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "2"
    assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")


def test_emulator_runs_from_the_command_line():
    with emulator_process("crm2erp.emulators.hubspot.app", "--companies", "5") as url:
        conn = HubSpotConnector(config(url))
        conn.check()
        assert sum(len(b.rows) for b in conn.read("companies")) == 5

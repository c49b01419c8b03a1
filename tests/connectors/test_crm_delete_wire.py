"""Deletes and archives by target id on the CRM connectors, over their emulators.

Each test reads the emulator back through its own API; the end-to-end flows
are in tests/engine/test_crm_deletes.py.
"""

from __future__ import annotations

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm2erp.connectors import create_connector
from crm2erp.connectors.base import DeleteMode, WriteAction
from crm2erp.errors import ConfigError

FAST_RETRY = {"max_attempts": 2, "backoff_base": 0.001, "backoff_max": 0.01}


# -- Salesforce ------------------------------------------------------------------

@pytest.fixture
def sf(serve):
    from crm2erp.emulators.salesforce.app import make_app
    app = make_app(seed=9, accounts=4, contacts_per_account=0)
    return serve(app)


def _sf(app, **stream):
    from crm2erp.emulators.salesforce.app import CLIENT_ID, CLIENT_SECRET
    return create_connector("salesforce", {
        "instance_url": app.base_url, "retry": FAST_RETRY,
        "auth": {"type": "client_credentials", "client_id": CLIENT_ID,
                 "client_secret": CLIENT_SECRET},
        "streams": {"accounts": {"sobject": "Account", "fields": ["Id", "Name", "Active__c"],
                                 "external_id_field": "ERP_Id__c", **stream}}})


def _sf_query(app, soql: str, kind: str = "query") -> list[dict]:
    from crm2erp.emulators.salesforce.app import CLIENT_ID, CLIENT_SECRET
    token = requests.post(f"{app.base_url}/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET}).json()["access_token"]
    return requests.get(f"{app.base_url}/services/data/v61.0/{kind}", params={"q": soql},
                        headers={"Authorization": f"Bearer {token}"}).json()["records"]


def test_salesforce_delete_result_wire_format(sf):
    from crm2erp.emulators.salesforce.app import CLIENT_ID, CLIENT_SECRET
    token = requests.post(f"{sf.base_url}/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET}).json()["access_token"]
    ids = [r["Id"] for r in _sf_query(sf, "SELECT Id FROM Account ORDER BY Id")]
    url = f"{sf.base_url}/services/data/v61.0/composite/sobjects"
    headers = {"Authorization": f"Bearer {token}"}
    answer = requests.delete(url, headers=headers,
                             params={"ids": f"{ids[0]},not-an-id", "allOrNone": "false"})
    assert answer.status_code == 200
    assert answer.json() == [
        {"id": ids[0], "success": True, "errors": []},
        {"success": False, "errors": [{"statusCode": "MALFORMED_ID",
                                       "message": "malformed id not-an-id", "fields": []}]}]
    again = requests.delete(url, headers=headers, params={"ids": ids[0]})
    assert again.json() == [{"success": False, "errors": [{
        "statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]}]
    rolled = requests.delete(url, headers=headers,
                             params={"ids": f"{ids[1]},{ids[0]}", "allOrNone": "true"}).json()
    assert rolled[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert requests.delete(url, headers=headers).status_code == 400
    deleted = _sf_query(sf, f"SELECT Id, IsDeleted FROM Account WHERE Id = '{ids[0]}'",
                        "queryAll")
    assert deleted == [{"attributes": deleted[0]["attributes"], "Id": ids[0], "IsDeleted": True}]
    assert len(_sf_query(sf, "SELECT Id FROM Account")) == 3      # ids[1] rolled back


def test_salesforce_delete_and_archive_by_id_report_not_found(sf):
    conn = _sf(sf, archive={"field": "Active__c", "value": False})
    assert conn.stream("accounts").delete_modes == ("delete", "archive")
    ids = [r["Id"] for r in _sf_query(sf, "SELECT Id FROM Account ORDER BY Id")]
    archived = conn.delete("accounts", [ids[0], "001000000000000AAA", "x"], DeleteMode.ARCHIVE)
    assert [r.action for r in archived] == [WriteAction.UPDATED, WriteAction.FAILED,
                                            WriteAction.FAILED]
    assert archived[1].error.startswith("not found: no record '001000000000000AAA' in Account")
    assert "not a Salesforce record Id" in archived[2].error
    deleted = conn.delete("accounts", [ids[1], ids[1]], DeleteMode.DELETE)
    assert [r.action for r in deleted] == [WriteAction.UPDATED, WriteAction.UPDATED]
    [twice] = conn.delete("accounts", [ids[1]], DeleteMode.DELETE)
    assert not twice.ok and "ENTITY_IS_DELETED" in twice.error
    assert twice.error.startswith(f"not found: no record {ids[1]!r} in Account")
    live = {r["Id"]: r["Active__c"] for r in _sf_query(sf, "SELECT Id, Active__c FROM Account")}
    assert live == {ids[0]: False, ids[2]: None, ids[3]: None}
    with pytest.raises(ConfigError, match="archive"):
        _sf(sf).delete("accounts", [ids[2]], DeleteMode.ARCHIVE)
    assert _sf(sf).stream("accounts").delete_modes == ("delete",)


# -- HubSpot ---------------------------------------------------------------------

@pytest.fixture
def hubspot(serve):
    from crm2erp.emulators.hubspot.app import make_app
    app = make_app(seed=9, companies=3)
    return serve(app)


def test_hubspot_archive_answers_204_for_any_id_so_the_connector_checks(hubspot):
    from crm2erp.emulators.hubspot.app import TOKEN
    headers = {"Authorization": f"Bearer {TOKEN}"}
    listed = requests.get(f"{hubspot.base_url}/crm/v3/objects/companies",
                          headers=headers).json()["results"]
    ids = [r["id"] for r in listed]
    raw = requests.post(f"{hubspot.base_url}/crm/v3/objects/companies/batch/archive",
                        headers=headers, json={"inputs": [{"id": "999999"}]})
    assert (raw.status_code, raw.content) == (204, b"")
    conn = create_connector("hubspot", {
        "base_url": hubspot.base_url, "retry": FAST_RETRY, "search_requests_per_second": None,
        "auth": {"type": "bearer", "token": TOKEN},
        "streams": {"companies": {"object_type": "companies", "properties": ["name"],
                                  "id_property": "erp_id"}}})
    outcome = conn.delete("companies", [ids[0], "999999", ids[0]], DeleteMode.DELETE)
    assert [r.ok for r in outcome] == [True, False, True]
    assert outcome[1].error == "not found: no record '999999' in companies"
    again = conn.delete("companies", [ids[0]], DeleteMode.ARCHIVE)
    assert again[0].error == f"not found: no record {ids[0]!r} in companies"
    live = requests.get(f"{hubspot.base_url}/crm/v3/objects/companies", headers=headers).json()
    gone = requests.get(f"{hubspot.base_url}/crm/v3/objects/companies", headers=headers,
                        params={"archived": "true"}).json()
    assert sorted(r["id"] for r in live["results"]) == sorted(ids[1:])
    assert [(r["id"], r["archived"], "archivedAt" in r) for r in gone["results"]] == \
        [(ids[0], True, True)]


# -- Dynamics --------------------------------------------------------------------

@pytest.fixture
def dynamics(serve):
    from crm2erp.emulators.dynamics.app import make_app
    app = make_app(seed=9, accounts=3)
    return serve(app)


def test_dynamics_delete_404_is_not_found_and_archive_deactivates(dynamics):
    from crm2erp.emulators.dynamics.app import CLIENT_ID, CLIENT_SECRET, TENANT_ID
    conn = create_connector("dynamics", {
        "environment_url": dynamics.base_url, "tenant_id": TENANT_ID,
        "authority_url": dynamics.base_url, "retry": FAST_RETRY,
        "auth": {"type": "client_credentials", "client_id": CLIENT_ID,
                 "client_secret": CLIENT_SECRET},
        "streams": {"accounts": {"entity_set": "accounts", "logical_name": "account",
                                 "key": "accountid", "alternate_key": ["accountnumber"],
                                 "fields": ["accountid", "name", "statecode", "statuscode"]}}})
    rows = [r for b in conn.read("accounts") for r in b.rows]
    ids = sorted(r["accountid"] for r in rows)
    missing = "00000000-0000-4000-8000-000000000000"
    archived = conn.delete("accounts", [ids[0], missing], DeleteMode.ARCHIVE)
    deleted = conn.delete("accounts", [ids[1], ids[1], "nope"], DeleteMode.DELETE)
    deleted[1:2] = conn.delete("accounts", [ids[1]], DeleteMode.DELETE)
    assert [r.ok for r in archived] == [True, False] and [r.ok for r in deleted] == \
        [True, False, False]
    assert archived[1].error.startswith(f"not found: no record {missing!r} in accounts")
    assert "0x80040217" in deleted[1].error and deleted[1].error.startswith("not found")
    assert "not a row id" in deleted[2].error
    back = {r["accountid"]: (r["statecode"], r["statuscode"])
            for b in conn.read("accounts") for r in b.rows}
    assert back == {ids[0]: (1, 2), ids[2]: (back[ids[2]][0], back[ids[2]][1])}
    assert back[ids[2]][0] == 0


# -- declarative REST ----------------------------------------------------------

@pytest.fixture
def demo(serve):
    from crm2erp.emulators.rest.app import make_app
    app = make_app(seed=9, organizations=3)
    return serve(app)


def _rest(app, **write):
    from crm2erp.emulators.rest.app import CLIENT_ID, CLIENT_SECRET
    return create_connector("rest", {
        "base_url": app.base_url, "retry": FAST_RETRY,
        "auth": {"type": "client_credentials", "client_id": CLIENT_ID,
                 "client_secret": CLIENT_SECRET, "token_url": "/oauth/token"},
        "streams": {"organizations": {"path": "/v1/organizations", "records": "data",
                                      "write": {"mode": "upsert", "key": "ref",
                                                "path": "/x/{key}", "error_path": "error",
                                                **write}}}})


def test_rest_delete_request_and_404_not_found(demo):
    conn = _rest(demo, delete={"path": "/v1/organizations/{id}"})
    assert conn.stream("organizations").delete_modes == ("delete",)
    outcome = conn.delete("organizations", ["2", "2", "77"], DeleteMode.DELETE)
    assert [r.action for r in outcome] == [WriteAction.UPDATED, WriteAction.UPDATED,
                                           WriteAction.FAILED]   # an id is sent once
    [twice] = conn.delete("organizations", ["2"], DeleteMode.DELETE)
    assert twice.error.startswith("not found: no record '2'")
    assert "HTTP 404: Organization 77 not found" in outcome[2].error
    assert [o["active_flag"] for o in (demo.orgs[1], demo.orgs[2], demo.orgs[3])] == \
        [True, False, True]
    with pytest.raises(ConfigError, match="write.archive"):
        conn.delete("organizations", ["1"], DeleteMode.ARCHIVE)
    with pytest.raises(ConfigError, match=r"needs \{id\}"):
        _rest(demo, delete={"path": "/v1/organizations"})


# -- any mix of ids: one result per id, in order; done only if it was there -----

@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picks=st.lists(st.sampled_from(["1", "2", "3", "4", "99"]), max_size=8))
def test_rest_and_hubspot_results_follow_the_ids_asked_for(demo, hubspot, picks):
    from crm2erp.emulators.hubspot.app import TOKEN
    rest = _rest(demo, delete={"path": "/v1/organizations/{id}"})
    hub = create_connector("hubspot", {
        "base_url": hubspot.base_url, "retry": FAST_RETRY, "search_requests_per_second": None,
        "auth": {"type": "bearer", "token": TOKEN},
        "streams": {"companies": {"object_type": "companies", "properties": ["name"],
                                  "id_property": "erp_id"}}})
    for conn, stream, live in (
            (rest, "organizations",
             lambda: {str(i) for i, o in demo.orgs.items() if o["active_flag"]}),
            (hub, "companies",
             lambda: {r["id"][-1:] for r in hubspot.portal.records("companies")})):
        before = live()
        ids = picks if conn is rest else [f"1000000000{p}" for p in picks]  # 10000000001..
        outcome = conn.delete(stream, ids, DeleteMode.DELETE)
        assert [r.key for r in outcome] == ids
        assert [r.ok for r in outcome] == [p in before for p in picks]
        assert all(r.error.startswith("not found") for r in outcome if not r.ok)
        assert live() == before - set(picks)

"""Dynamics 365 / Dataverse connector specifics, over the real loopback emulator."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import requests

from crm2erp.connectors import create_connector
from crm2erp.connectors.base import Cursor, WriteAction
from crm2erp.connectors.dynamics import DynamicsConfig, DynamicsConnector
from crm2erp.emulators.dynamics.app import CLIENT_ID, CLIENT_SECRET, TENANT_ID, make_app
from crm2erp.emulators.dynamics.environment import guid_sort_key
from crm2erp.emulators.dynamics.odata import ODataError, parse_filter, parse_key
from crm2erp.emulators.kernel.server import emulator_process, serve_wsgi
from crm2erp.errors import ConfigError, FatalError

FAST_RETRY = {"max_attempts": 5, "backoff_base": 0.001, "backoff_max": 0.01}


def config(url, **extra):
    return DynamicsConfig.model_validate({
        "environment_url": url, "tenant_id": TENANT_ID, "authority_url": url,
        "retry": FAST_RETRY, "page_size": 100,
        "auth": {"type": "client_credentials", "client_id": CLIENT_ID,
                 "client_secret": CLIENT_SECRET}, **extra})


class Recorder:
    """WSGI middleware keeping (method, path, query, headers) of every call."""

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
        environ["wsgi.input"] = io.BytesIO(raw)
        headers = {k[5:]: v for k, v in environ.items() if k.startswith("HTTP_")}
        self.calls.append((environ["REQUEST_METHOD"], environ["PATH_INFO"],
                           environ.get("QUERY_STRING", ""), headers, raw))
        return self.app(environ, start_response)


@pytest.fixture
def org():
    app = make_app(seed=4, accounts=60, contacts_per_account=2)
    rec = Recorder(app)
    with serve_wsgi(rec):
        yield app, rec


# -- OData subset -----------------------------------------------------------------

def test_filter_and_key_grammar():
    pred = parse_filter("(name eq 'O''Neil' or revenue ge 10.5) and not statecode eq 1 and "
                        "modifiedon ge 2024-01-01T00:00:00Z", {"name", "revenue", "statecode",
                                                               "modifiedon"})
    when = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    assert pred({"name": "o'neil", "revenue": None, "statecode": 0, "modifiedon": when})
    assert not pred({"name": "x", "revenue": Decimal(3), "statecode": 0, "modifiedon": when})
    with pytest.raises(ODataError, match="Could not find a property named 'nope'"):
        parse_filter("nope eq 1", {"name"})
    assert parse_key("accountnumber='A''1'", "accountid") == {"accountnumber": "A'1"}
    guid = "5D1E3F4A-0000-4000-8000-000000000001"
    assert parse_key(guid, "accountid") == {"accountid": guid.lower()}


def test_emulator_orders_guids_like_sql_server_not_like_text():
    a, b = "ffffffff-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
    assert sorted([a, b], key=guid_sort_key) == [a, b] and sorted([a, b]) == [b, a]


# -- reading ----------------------------------------------------------------------

def test_incremental_query_shape(org):
    app, rec = org
    conn = DynamicsConnector(config(app.base_url))
    batches = list(conn.read("accounts", Cursor("2024-01-01T00:00:03.500Z", None)))
    gets = [(q, h) for m, p, q, h, _ in rec.calls if p == "/api/data/v9.2/accounts"]
    query = {k: v[0] for k, v in parse_qs(gets[0][0]).items()}
    assert query["$filter"] == "modifiedon ge 2024-01-01T00:00:03Z"
    assert query["$orderby"] == "modifiedon asc,accountid asc"
    assert "accountnumber" in query["$select"].split(",")
    assert gets[0][1]["PREFER"] == "odata.maxpagesize=100"
    assert len(gets) == 1 + (60 - 3 * 7 - 1) // 100
    rows = [r for b in batches for r in b.rows]
    assert rows and all(r["modifiedon"] >= "2024-01-01T00:00:04Z" for r in rows)
    assert not any(k.startswith("@odata") for r in rows for k in r)
    audits = [q for _, p, q, _, _ in rec.calls if p == "/api/data/v9.2/audits"]
    assert "objecttypecode eq 'account' and operation eq 3" in parse_qs(audits[0])["$filter"][0]


def test_paging_follows_next_link_with_skiptoken(org):
    app, rec = org
    conn = DynamicsConnector(config(app.base_url, page_size=25))
    rows = [r for b in conn.read("contacts") for r in b.rows]
    assert len(rows) == len({r["contactid"] for r in rows}) == 120
    queries = [q for _, p, q, _, _ in rec.calls if p == "/api/data/v9.2/contacts"]
    assert len(queries) == 5 and all("skiptoken=%3Ccookie%20pagenumber" in q for q in queries[1:])


# -- writing ----------------------------------------------------------------------

def test_upsert_by_alternate_key_uses_conditional_patch(org):
    app, rec = org
    conn = DynamicsConnector(config(app.base_url))
    row = {"accountnumber": "O'Brien-1", "name": "O'Brien Ltd", "revenue": Decimal("12.50")}
    first = conn.upsert("accounts", [row])[0]
    second = conn.upsert("accounts", [{**row, "name": "O'Brien Limited"}])[0]
    assert (first.action, second.action) == (WriteAction.CREATED, WriteAction.UPDATED)
    assert first.target_id and first.target_id == second.target_id
    patches = [(p, h) for m, p, _, h, _ in rec.calls if m == "PATCH"]
    assert patches[0][0] == "/api/data/v9.2/accounts(accountnumber='O''Brien-1')"
    assert [h.get("IF_NONE_MATCH") or "If-Match " + h.get("IF_MATCH") for _, h in patches] \
        == ["*", "*", "If-Match *"]
    found = conn.lookup("accounts", ["O'Brien-1"])["O'Brien-1"]
    assert (found["accountid"], found["name"]) == (first.target_id, "O'Brien Limited")


def test_lookup_is_written_with_odata_bind(org):
    app, _ = org
    conn = DynamicsConnector(config(app.base_url))
    account = app.env.all("accounts")[3]
    result = conn.upsert("contacts", [{
        "crm2erp_externalid": "ERP-C-1", "lastname": "Murphy",
        "parentcustomerid_account@odata.bind":
            f"/accounts(accountnumber='{account['accountnumber']}')"}])[0]
    assert result.action is WriteAction.CREATED
    row = conn.lookup("contacts", ["ERP-C-1"])["ERP-C-1"]
    assert row["_parentcustomerid_value"] == account["accountid"]


def test_refused_rows_carry_the_odata_error_code(org):
    app, _ = org
    conn = DynamicsConnector(config(app.base_url))
    results = conn.upsert("accounts", [app.invalid_row("accounts"), {"name": "no key"}])
    assert [r.action for r in results] == [WriteAction.FAILED] * 2
    assert results[0].error.startswith("0x80044331: A validation error occurred")
    assert "alternate key accountnumber is empty" in results[1].error
    with pytest.raises(ConfigError, match="'no_such_column' does not exist"):
        conn.upsert("accounts", [{"accountnumber": "X-1", "no_such_column": 1}])
    with pytest.raises(ConfigError, match="no alternate_key"):
        conn.upsert("opportunityproducts", [{"quantity": 1}])


# -- auth, limits, config -------------------------------------------------------------

def test_token_request_uses_the_environment_default_scope(org):
    app, rec = org
    DynamicsConnector(config(app.base_url)).check()
    token_calls = [raw for _, p, _, _, raw in rec.calls if p.endswith("/oauth2/v2.0/token")]
    form = parse_qs(token_calls[0].decode())
    assert form["scope"] == [f"{app.base_url}/.default"]
    assert form["grant_type"] == ["client_credentials"]
    assert f"/{TENANT_ID}/oauth2/v2.0/token" in [p for _, p, *_ in rec.calls][0]


def test_bad_secret_reports_the_aadsts_reason(org):
    app, _ = org
    conn = DynamicsConnector(config(app.base_url, auth={
        "type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "nope"}))
    with pytest.raises(FatalError, match="AADSTS7000215"):
        conn.check()


def test_service_protection_waits_then_exhaustion_is_fatal(org):
    app, _ = org
    conn = DynamicsConnector(config(app.base_url))
    app.fail_next(429, times=1, retry_after=2)
    assert sum(len(b.rows) for b in conn.read("products")) == 20
    assert 2.0 in conn.client.stats.waits
    app.exhaust_limit()
    with pytest.raises(FatalError, match="entitlement"):
        list(conn.read("products"))


def test_config_needs_a_tenant_for_client_credentials():
    with pytest.raises(ConfigError, match="tenant_id"):
        create_connector("dynamics", {"environment_url": "https://x.crm.dynamics.com",
                                      "auth": {"type": "client_credentials",
                                               "client_id": "a", "client_secret": "b"}})


def test_emulator_speaks_odata_errors(org):
    app, _ = org
    token = requests.post(f"{app.base_url}/{TENANT_ID}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "scope": f"{app.base_url}/.default"}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    resp = requests.get(f"{app.base_url}/api/data/v9.2/accounts?$select=nope", headers=headers)
    assert resp.status_code == 400 and resp.json() == {"error": {   # as Microsoft documents
        "code": "0x0",
        "message": "Could not find a property named 'nope' on type "
                   "'Microsoft.Dynamics.CRM.account'."}}
    app.expire_tokens()
    resp = requests.get(f"{app.base_url}/api/data/v9.2/WhoAmI", headers=headers)
    assert resp.status_code == 401 and "invalid_token" in resp.headers["WWW-Authenticate"]


def test_emulator_runs_from_the_command_line():
    with emulator_process("crm2erp.emulators.dynamics.app", "--accounts", "5") as url:
        conn = DynamicsConnector(config(url))
        conn.check()
        assert sum(len(b.rows) for b in conn.read("accounts")) == 5


# -- children and write-back -------------------------------------------------------

def test_children_embed_opportunity_products_with_the_product_expanded():
    app = make_app(seed=6, accounts=120, products_per_opportunity=3,
                   product_numbers=["TG11", "TG12", "TG13"])
    rec = Recorder(app)
    with serve_wsgi(rec):
        conn = DynamicsConnector(config(app.base_url))   # default opportunities: lines embedded
        batches = list(conn.read("opportunities", batch_size=100))
        rows = [r for b in batches for r in b.rows]
    assert len(rows) == 120 and all(len(r["lines"]) == 3 for r in rows)
    assert sum(1 for r in rows if r["statecode"] == 1) == 40      # every third one is won
    for row in rows:
        lines = row["lines"]
        assert all(line["_opportunityid_value"] == row["opportunityid"] for line in lines)
        assert {line["productid"]["productnumber"] for line in lines} <= {"TG11", "TG12", "TG13"}
        assert all("@odata.etag" not in line["productid"] for line in lines)
        assert sum(Decimal(str(line["quantity"])) * Decimal(str(line["priceperunit"]))
                   for line in lines) == Decimal(str(row["estimatedvalue"]))
    child_queries = [q for _, p, q, _, _ in rec.calls if p.endswith("/opportunityproducts")
                     and "skiptoken" not in q]      # first pages; 150 rows take two pages
    # one query per 50 parents of each batch (batches end where timestamps change)
    assert len(child_queries) == sum(-(-len(b.rows) // 50) for b in batches) < len(batches) + 3
    assert "%24expand=productid" in child_queries[0]


def test_update_patches_by_id_and_never_creates():
    app = make_app(seed=6, accounts=5)
    with serve_wsgi(app):
        conn = DynamicsConnector(config(app.base_url))
        accounts = list(conn.read("accounts"))
        rows = [r for b in accounts for r in b.rows]
        results = conn.update("accounts", [
            {"accountid": rows[0]["accountid"], "accountnumber": "CUST-0001"},
            {"accountid": "00000000-0000-4000-8000-000000000000", "accountnumber": "X"},
            {"accountid": "not-a-guid", "accountnumber": "Y"}])
        assert results[0].action is WriteAction.UPDATED
        assert results[0].target_id == rows[0]["accountid"]
        assert results[1].action is WriteAction.FAILED and "Does Not Exist" in results[1].error
        assert results[2].action is WriteAction.FAILED and "GUID" in results[2].error
        assert app.count("accounts") == 5
        assert app.env.tables["accounts"][rows[0]["accountid"]]["accountnumber"] == "CUST-0001"
        again = [r for b in conn.read("accounts", accounts[-1].cursor) for r in b.rows]
        assert [r["accountid"] for r in again] == [rows[0]["accountid"]]   # modifiedon moved

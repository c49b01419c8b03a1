"""Salesforce connector specifics, over the real loopback emulator."""

from __future__ import annotations

import math

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crm2erp.connectors import create_connector
from crm2erp.connectors.base import Cursor, WriteAction
from crm2erp.connectors.salesforce import SalesforceConfig, SalesforceConnector
from crm2erp.emulators.kernel.server import emulator_process, serve_wsgi
from crm2erp.emulators.salesforce import soql
from crm2erp.emulators.salesforce.app import CLIENT_ID, CLIENT_SECRET, USERNAME, make_app
from crm2erp.errors import ConfigError, FatalError

FAST_RETRY = {"max_attempts": 6, "backoff_base": 0.001, "backoff_max": 0.01}


def config(url, **extra):
    return SalesforceConfig.model_validate({
        "instance_url": url, "retry": FAST_RETRY,
        "auth": {"type": "client_credentials", "client_id": CLIENT_ID,
                 "client_secret": CLIENT_SECRET}, **extra})


@pytest.fixture
def org(serve):
    app = make_app(seed=3, accounts=450, contacts_per_account=1)
    return serve(app)


def token(org):
    return requests.post(f"{org.base_url}/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET}).json()["access_token"]


# -- SOQL subset -------------------------------------------------------------

def test_soql_subset_parses_what_the_connector_emits():
    q = soql.parse("SELECT Id, Name FROM Account WHERE SystemModstamp >= 2024-01-01T00:00:00Z "
                   "AND Name != 'O\\'Brien' AND Id IN ('a', 'b') ORDER BY SystemModstamp, Id "
                   "DESC LIMIT 5")
    assert (q.sobject, q.fields, q.limit) == ("Account", ["Id", "Name"], 5)
    assert [c.op for c in q.conditions] == [">=", "!=", "IN"]
    assert q.conditions[1].value == "O'Brien" and q.conditions[2].value == {"a", "b"}
    assert q.order_by == [("SystemModstamp", False), ("Id", True)]
    assert soql.parse("SELECT COUNT() FROM Contact").count_only
    for bad in ("SELECT FROM Account", "SELECT Id FROM Account WHERE Name LIKE 'A%'",
                "SELECT Id FROM Account WHERE (Name = 'a' OR Name = 'b')"):
        with pytest.raises(soql.SoqlError):
            soql.parse(bad)


def test_incremental_soql_uses_systemmodstamp_ge_and_id_tiebreak(org):
    conn = SalesforceConnector(config(org.base_url))
    text = conn.reader.soql(conn.config.streams["accounts"],
                            Cursor("2024-01-01T00:00:05.250Z", "001x"), deletes=True)
    assert text.endswith("FROM Account WHERE SystemModstamp >= 2024-01-01T00:00:05Z "
                         "ORDER BY SystemModstamp, Id")
    assert "IsDeleted" in text


# -- wire format of the emulator ---------------------------------------------

def test_emulator_query_wire_format(org):
    headers = {"Authorization": f"Bearer {token(org)}", "Sforce-Query-Options": "batchSize=200"}
    first = requests.get(f"{org.base_url}/services/data/v61.0/query", headers=headers,
                         params={"q": "SELECT Id, Name FROM Account ORDER BY Id"})
    body = first.json()
    assert body["totalSize"] == 450 and body["done"] is False and len(body["records"]) == 200
    assert body["records"][0]["attributes"]["type"] == "Account"
    assert body["records"][0]["attributes"]["url"].startswith("/services/data/v61.0/sobjects/")
    assert body["nextRecordsUrl"].startswith("/services/data/v61.0/query/01g")
    assert first.headers["Sforce-Limit-Info"] == "api-usage=1/100000"
    last = requests.get(org.base_url + body["nextRecordsUrl"].replace("-200", "-400"),
                        headers=headers).json()
    assert last["done"] is True and "nextRecordsUrl" not in last and len(last["records"]) == 50
    bad = requests.get(f"{org.base_url}/services/data/v61.0/query", headers=headers,
                       params={"q": "SELECT Nope FROM Account"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"
    anon = requests.get(f"{org.base_url}/services/data/v61.0/limits")
    assert anon.status_code == 401 and anon.json()[0]["errorCode"] == "INVALID_SESSION_ID"


# -- reads ---------------------------------------------------------------------

def test_full_read_uses_the_minimum_number_of_requests(org):
    conn = SalesforceConnector(config(org.base_url, page_size=200))
    rows = [r for b in conn.read("accounts", batch_size=1000) for r in b.rows]
    assert len(rows) == 450
    assert conn.client.stats.calls == 1 + math.ceil(450 / 200)  # token + pages
    assert conn.api_usage == (3, 100000)


def test_request_limit_exceeded_is_fatal_and_says_resume_later(org):
    conn = SalesforceConnector(config(org.base_url))
    org.exhaust_limit()
    with pytest.raises(FatalError) as err:
        list(conn.read("accounts"))
    message = str(err.value)
    assert "daily API request limit" in message and "resume later" in message
    assert "watermark" in message and "100000/100000" in message


def test_bulk_threshold_switches_large_reads_to_bulk(org):
    conn = SalesforceConnector(config(org.base_url, bulk_threshold=400, bulk_poll_interval=0))
    accounts = [r for b in conn.read("accounts") for r in b.rows]
    contacts = [r for b in conn.read("contacts") for r in b.rows]
    assert len(accounts) == 450 and len(contacts) == 450
    bulk_jobs = list(org._jobs)  # jobs are deleted after reading: none left behind
    assert bulk_jobs == []
    assert isinstance(accounts[0]["NumberOfEmployees"], int)  # typed from describe
    small = SalesforceConnector(config(org.base_url, bulk_threshold=10_000))
    assert len([r for b in small.read("accounts") for r in b.rows]) == 450


def test_check_names_missing_fields(org):
    conn = SalesforceConnector(config(org.base_url, streams={
        "accounts": {"sobject": "Account", "fields": ["Id", "Name", "Colour__c"]}}))
    with pytest.raises(ConfigError, match="Colour__c"):
        conn.check()


def test_registered_as_entry_point(org):
    conn = create_connector("salesforce", {
        "type": "salesforce", "instance_url": org.base_url,
        "auth": {"type": "client_credentials", "client_id": CLIENT_ID,
                 "client_secret": CLIENT_SECRET}})
    assert isinstance(conn, SalesforceConnector)
    with pytest.raises(ConfigError, match="page_size"):
        create_connector("salesforce", {"instance_url": org.base_url, "page_size": 5})


# -- writes --------------------------------------------------------------------

def test_upsert_sends_200_per_call_and_maps_record_errors(org):
    conn = SalesforceConnector(config(org.base_url))
    rows = org.sample_rows("accounts", 449) + [org.invalid_row("accounts"),
                                               {"Name": "no external id"}]
    before = conn.client.stats.calls
    results = conn.upsert("accounts", rows)
    assert conn.client.stats.calls - before == 3 + 1  # 200 + 200 + 50, plus the token
    assert [r.action for r in results[:449]] == [WriteAction.CREATED] * 449
    assert results[449].action is WriteAction.FAILED
    assert "REQUIRED_FIELD_MISSING" in results[449].error
    assert results[450].action is WriteAction.FAILED and "ERP_Id__c" in results[450].error
    found = conn.lookup("accounts", [rows[0]["ERP_Id__c"], "missing"])
    assert list(found) == [rows[0]["ERP_Id__c"]] and found[rows[0]["ERP_Id__c"]]["Name"]


def test_unknown_field_in_upsert_is_a_configuration_error_with_a_fix(org):
    conn = SalesforceConnector(config(org.base_url))
    row = {**org.sample_rows("accounts", 1)[0], "Colour__c": "red"}
    with pytest.raises(ConfigError, match="Colour__c.*stream config"):
        conn.upsert("accounts", [row])


def test_update_sets_fields_by_id_200_per_call_and_never_creates(org):
    conn = SalesforceConnector(config(org.base_url))
    everyone = org.org.records("Account")
    accounts, deleted = everyone[:250], everyone[300]["Id"]
    everyone[300]["IsDeleted"] = True     # in the recycle bin
    rows = [{"Id": a["Id"], "ERP_Id__c": f"BP{n:05d}"} for n, a in enumerate(accounts)]
    rows += [{"Id": "001Hn9999999999AAA", "ERP_Id__c": "BP-NOPE"},
             {"Id": deleted, "ERP_Id__c": "BP-GONE"},
             {"Id": accounts[1]["Id"], "ERP_Id__c": "BP00000"},   # taken by accounts[0]
             {"ERP_Id__c": "no Id"}]
    before, count = conn.client.stats.calls, org.count("accounts")
    results = conn.update("accounts", rows)
    assert conn.client.stats.calls - before == 1 + 2     # token, then 200 + 53 records
    assert [r.action for r in results[:250]] == [WriteAction.UPDATED] * 250
    assert results[0].key == results[0].target_id == accounts[0]["Id"]
    assert "INVALID_CROSS_REFERENCE_KEY" in results[250].error
    assert "ENTITY_IS_DELETED" in results[251].error
    assert "DUPLICATE_VALUE" in results[252].error
    assert results[253].action is WriteAction.FAILED and "no Id" in results[253].error
    assert org.count("accounts") == count       # nothing created
    stored = {a["Id"]: a for a in org.org.records("Account")}
    assert stored[accounts[0]["Id"]]["ERP_Id__c"] == "BP00000"
    assert stored[accounts[1]["Id"]]["ERP_Id__c"] == "BP00001"
    # an update moves SystemModstamp, so the next incremental read sees the record again
    assert stored[accounts[0]["Id"]]["SystemModstamp"] > accounts[0]["CreatedDate"]


def test_update_refuses_unknown_fields_with_a_fix(org):
    conn = SalesforceConnector(config(org.base_url))
    account = org.org.records("Account")[0]["Id"]
    with pytest.raises(ConfigError, match="Colour__c"):
        conn.update("accounts", [{"Id": account, "Colour__c": "red"}])


# -- children --------------------------------------------------------------------

def test_children_embed_line_items_with_one_query_per_batch():
    app = make_app(seed=4, accounts=30, opportunities_per_account=2,
                   line_items_per_opportunity=3, product_codes=["TG11", "TG12"])
    with serve_wsgi(app):
        conn = SalesforceConnector(config(app.base_url))   # default streams: lines embedded
        assert dict(conn.config.streams["opportunities"].children)["lines"].stream == \
            "opportunity_line_items"
        before = conn.client.stats.calls
        batches = list(conn.read("opportunities", batch_size=25))
        # token, one query page, and one line-item query per batch of 25 (60 opportunities)
        assert conn.client.stats.calls - before == 1 + 1 + 3
        rows = [r for b in batches for r in b.rows]
    assert len(rows) == 60 and all(len(r["lines"]) == 3 for r in rows)
    for row in rows:
        assert [line["Id"] for line in row["lines"]] == sorted(line["Id"]
                                                               for line in row["lines"])
        assert all(line["OpportunityId"] == row["Id"] and "attributes" not in line
                   for line in row["lines"])
        assert {line["ProductCode"] for line in row["lines"]} <= {"TG11", "TG12"}
        assert sum(line["Quantity"] * line["UnitPrice"] for line in row["lines"]) == \
            pytest.approx(row["Amount"])


def test_children_config_forms_and_errors():
    base = {"instance_url": "https://x.my.salesforce.com",
            "auth": {"type": "client_credentials", "client_id": "a", "client_secret": "b"}}
    short = SalesforceConfig.model_validate({**base, "streams": {
        "opps": {"sobject": "Opportunity", "fields": ["Id"], "children": ["items"]},
        "items": {"sobject": "OpportunityLineItem", "fields": ["Id", "Quantity"]}}})
    assert short.streams["opps"].children["items"].stream == "items"
    assert "OpportunityId" in short.streams["items"].fields      # the foreign key is read
    custom = SalesforceConfig.model_validate({**base, "streams": {
        "invoices": {"sobject": "Invoice__c", "fields": ["Id"],
                     "children": {"lines": {"stream": "lines", "foreign_key": "Invoice__c"}}},
        "lines": {"sobject": "Invoice_Line__c", "fields": ["Id"]}}})
    assert "Invoice__c" in custom.streams["lines"].fields
    with pytest.raises(ValueError, match="'nothing', which is not configured"):
        SalesforceConfig.model_validate({**base, "streams": {
            "opps": {"sobject": "Opportunity", "fields": ["Id"], "children": ["nothing"]}}})


# -- JWT bearer ------------------------------------------------------------------

def _rsa_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode()


def test_jwt_bearer_flow(tmp_path):
    private, public = _rsa_pair()
    app = make_app(accounts=10, jwt_public_key=public)
    key_file = tmp_path / "sf.key"
    key_file.write_text(private)
    with serve_wsgi(app) as url:
        good = SalesforceConfig.model_validate({"instance_url": url, "auth": {
            "type": "jwt_bearer", "client_id": CLIENT_ID, "subject": USERNAME,
            "private_key_file": str(key_file)}})
        conn = SalesforceConnector(good)
        conn.check()
        assert sum(len(b.rows) for b in conn.read("accounts")) == 10
        bad = good.model_copy(update={"auth": good.auth.model_copy(
            update={"subject": "someone@else.com"})})
        with pytest.raises(FatalError, match="approved"):
            SalesforceConnector(bad).check()


# -- the emulator as a program -------------------------------------------------------

def test_emulator_runs_from_the_command_line():
    with emulator_process("crm2erp.emulators.salesforce.app", "--accounts", "5") as url:
        conn = SalesforceConnector(config(url))
        conn.check()
        assert sum(len(b.rows) for b in conn.read("accounts")) == 5


# -- acceptance: 25,000 accounts, 10 % faults ------------------------------------------

@pytest.mark.slow
def test_acceptance_25k_accounts_with_faults_read_exactly_once():
    app = make_app(seed=11, accounts=25_000, contacts_per_account=0,
                   opportunities_per_account=0, products=0, fault_rate=0.10, retry_after=0)
    with serve_wsgi(app) as url:
        conn = SalesforceConnector(config(url, retry={**FAST_RETRY, "max_attempts": 10}))
        full = list(conn.read("accounts", batch_size=2000))
        ids = [r["Id"] for b in full for r in b.rows]
        assert len(ids) == len(set(ids)) == 25_000
        assert conn.client.stats.calls <= math.ceil((1 + 25_000 / 2000) * 1.05)
        touched = set(app.touch("accounts", 3000))
        gone = set(app.delete_records("accounts", 10))
        before = conn.client.stats.calls
        inc = list(conn.read("accounts", full[-1].cursor, batch_size=2000))
        changed = [r["Id"] for b in inc for r in b.rows]
        assert sorted(changed) == sorted(touched - gone)
        assert {k for b in inc for k in b.deleted_keys} == gone
        assert conn.client.stats.calls - before <= math.ceil(3010 / 2000 * 1.05)
        # every extra attempt is explained by one injected fault: no wasted re-reads
        assert app.faults_injected > 0
        assert conn.client.stats.attempts == conn.client.stats.calls + app.faults_injected


def test_bulk_read_follows_every_locator_page_and_types_cells_like_rest(org):
    """maxRecords=100 on 450 accounts: five result pages, read through Sforce-Locator;
    each row equals the REST read's row (numbers, booleans and empties typed the same)."""
    bulk = SalesforceConnector(config(org.base_url, mode="bulk", bulk_max_records=100,
                                      bulk_poll_interval=0))
    rest = SalesforceConnector(config(org.base_url))
    by_bulk = {r["Id"]: r for b in bulk.read("accounts") for r in b.rows}
    by_rest = {r["Id"]: r for b in rest.read("accounts") for r in b.rows}
    assert len(by_bulk) == 450 and by_bulk.keys() == by_rest.keys()
    fields = ("NumberOfEmployees", "AnnualRevenue", "Name")
    assert all({f: by_bulk[i][f] for f in fields} == {f: by_rest[i][f] for f in fields}
               for i in by_rest)
    products_bulk = sorted((r["Id"], r["IsActive"]) for b in bulk.read("products") for r in b.rows)
    assert products_bulk == sorted((r["Id"], r["IsActive"]) for b in rest.read("products")
                                   for r in b.rows)

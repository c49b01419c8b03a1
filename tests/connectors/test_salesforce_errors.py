"""Salesforce error classes, one test per row of the table in docs/connectors/salesforce.md.

Bodies follow the Salesforce REST API reference: an error response is a list
``[{"message", "errorCode", "fields"}]``; an sObject Collections answer is one
SaveResult/UpsertResult ``{"id", "success", "errors": [{"statusCode",
"message", "fields"}]}`` per record.
"""

from __future__ import annotations

import pytest

from crm2erp.cli.app import EXIT_USAGE, main
from crm2erp.connectors.base import WriteAction
from crm2erp.connectors.salesforce import SalesforceConfig, SalesforceConnector
from crm2erp.demo.emulated import seed_salesforce, seed_sap
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.emulators.salesforce.app import CLIENT_ID, CLIENT_SECRET, make_app
from crm2erp.errors import ConfigError, FatalError
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore

FAST_RETRY = {"max_attempts": 3, "backoff_base": 0.001, "backoff_max": 0.01}


def connector(url, **extra):
    return SalesforceConnector(SalesforceConfig.model_validate({
        "instance_url": url, "retry": FAST_RETRY,
        "auth": {"type": "client_credentials", "client_id": CLIENT_ID,
                 "client_secret": CLIENT_SECRET}, **extra}))


@pytest.fixture
def org(serve):
    app = make_app(seed=8, accounts=20, contacts_per_account=1)
    return serve(app)


def test_all_or_none_rolled_back_records_are_sent_again_and_written(org):
    conn = connector(org.base_url, all_or_none=True)
    rows = org.sample_rows("accounts", 3)
    rows.insert(1, org.invalid_row("accounts"))
    results = conn.upsert("accounts", rows)
    assert [r.action for r in results] == [WriteAction.CREATED, WriteAction.FAILED,
                                           WriteAction.CREATED, WriteAction.CREATED]
    assert "REQUIRED_FIELD_MISSING" in results[1].error
    assert "ROLLED_BACK" not in results[1].error
    stored = {r["ERP_Id__c"]: r for r in org.org.records("Account")}
    for row, result in zip(rows, results, strict=True):
        if result.ok:   # read back from the org: written, with the values sent
            assert stored[row["ERP_Id__c"]]["Id"] == result.target_id
            assert stored[row["ERP_Id__c"]]["Name"] == row["Name"]
    assert rows[1]["ERP_Id__c"] not in stored


def test_all_or_none_update_retries_the_rolled_back_rows(org):
    conn = connector(org.base_url, all_or_none=True)
    accounts = org.org.records("Account")[:3]
    rows = [{"Id": accounts[0]["Id"], "Phone": "+49 30 1"},
            {"Id": "001Hn9999999999AAA", "Phone": "+49 30 2"},
            {"Id": accounts[2]["Id"], "Phone": "+49 30 3"}]
    results = conn.update("accounts", rows)
    assert [r.ok for r in results] == [True, False, True]
    assert "INVALID_CROSS_REFERENCE_KEY" in results[1].error
    stored = {a["Id"]: a for a in org.org.records("Account")}
    assert stored[accounts[0]["Id"]]["Phone"] == "+49 30 1"
    assert stored[accounts[2]["Id"]]["Phone"] == "+49 30 3"


def test_a_record_refused_for_a_read_only_field_stops_the_run(org):
    conn = connector(org.base_url)
    row = {**org.sample_rows("accounts", 1)[0], "CreatedDate": "2024-01-01T00:00:00Z"}
    with pytest.raises(ConfigError, match="INVALID_FIELD_FOR_INSERT_UPDATE.*CreatedDate"):
        conn.upsert("accounts", [row])


def test_a_record_refused_for_its_data_fails_alone(org):
    conn = connector(org.base_url)
    rows = org.sample_rows("accounts", 2)
    rows[0]["Name"] = "x" * 300
    results = conn.upsert("accounts", rows)
    assert not results[0].ok and "STRING_TOO_LONG" in results[0].error
    assert results[1].action is WriteAction.CREATED


def test_3xx_answer_to_an_upsert_is_a_clear_error(org):
    conn = connector(org.base_url)
    org.reply_next(300, ["/services/data/v61.0/sobjects/Account/001Hn0000000001AAA",
                         "/services/data/v61.0/sobjects/Account/001Hn0000000002AAA"],
                   on="/composite/sobjects")
    with pytest.raises(FatalError, match="HTTP 300.*001Hn0000000001AAA"):
        conn.upsert("accounts", org.sample_rows("accounts", 1))


def test_unknown_field_on_read_is_a_configuration_error_naming_it(org):
    conn = connector(org.base_url, streams={"accounts": {
        "sobject": "Account", "fields": ["Id", "Name", "Colour__c"]}})
    with pytest.raises(ConfigError, match="INVALID_FIELD.*Colour__c"):
        list(conn.read("accounts"))


def test_unknown_sobject_on_read_is_a_configuration_error_naming_it(org):
    conn = connector(org.base_url, streams={"accounts": {"sobject": "Acount",
                                                         "fields": ["Id", "Name"]}})
    with pytest.raises(ConfigError, match="INVALID_TYPE.*'Acount'"):
        list(conn.read("accounts"))


def test_check_lists_every_unknown_sobject(org):
    conn = connector(org.base_url, streams={
        "a": {"sobject": "Acount", "fields": ["Id"]},
        "b": {"sobject": "Contact", "fields": ["Id", "Shoe_Size__c"]},
        "c": {"sobject": "Oportunity", "fields": ["Id"]}})
    with pytest.raises(ConfigError) as info:
        conn.check()
    text = str(info.value)
    assert "'a'" in text and "Acount" in text and "'c'" in text and "Oportunity" in text
    assert "Shoe_Size__c" in text


def test_configuration_error_stops_the_cli_run_with_exit_2(tmp_path, monkeypatch, capsys):
    sf_app, sap_app = seed_salesforce(accounts=5, seed=5), seed_sap()
    state = f"sqlite:///{tmp_path / 'state.db'}"
    with serve_wsgi(sf_app) as sf_url, serve_wsgi(sap_app) as sap_url:
        monkeypatch.setenv("SF_INSTANCE_URL", sf_url)
        monkeypatch.setenv("SAP_BASE_URL", sap_url)
        sf_app.reply_next(400, [{"message": "\nSELECT Id, Name, Colour__c FROM Account\n"
                                 "                 ^\nERROR at Row:1:Column:18\nNo such "
                                 "column 'Colour__c' on entity 'Account'. If you are "
                                 "attempting to use a custom field, be sure to append the "
                                 "'__c' after the custom field name.",
                                 "errorCode": "INVALID_FIELD"}], on="/query")
        code = main(["-p", str(pack_dir("packs/salesforce-sap")), "--state", state,
                     "sync", "run", "sf_sap_accounts"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "configuration error" in err and "Colour__c" in err
    assert "Traceback" not in err
    store = StateStore.open(state)
    try:
        assert store.dead_letters(limit=10) == []     # stopped once, no row dead-lettered
        assert [r.status for r in store.list_runs("sf_sap_accounts")] == ["failed"]
        assert store.get_watermark("sf_sap_accounts", "accounts") is None
    finally:
        store.close()


def test_other_refusals_are_fatal_with_salesforces_message(org):
    conn = connector(org.base_url)
    org.reply_next(400, [{"message": "record limit reached. cannot submit more than 200 "
                          "records into this call", "errorCode": "EXCEEDED_ID_LIMIT"}],
                   on="/composite/sobjects")
    with pytest.raises(FatalError, match="EXCEEDED_ID_LIMIT: record limit reached") as info:
        conn.upsert("accounts", org.sample_rows("accounts", 1))
    assert not isinstance(info.value, ConfigError)

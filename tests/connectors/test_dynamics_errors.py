"""Dataverse error classes, one test per row of the table in docs/connectors/dynamics.md.

Bodies follow Microsoft's "Troubleshoot Dataverse Web API client errors":
``{"error": {"code": "0x...", "message": ...}}`` - ``0x8006088a`` "Resource not
found for the segment 'X'." (404) for an unknown entity set, ``0x0`` "Could not
find a property named 'X' on type 'Microsoft.Dynamics.CRM.account'." (400) for
an unknown column in a query, and ``0x80048d19`` "Error identified in Payload
provided by the user for Entity ..." with the OData exception for an unknown
column in a write.
"""

from __future__ import annotations

import pytest

from crm2erp.connectors.base import WriteAction
from crm2erp.connectors.dynamics import DynamicsConfig, DynamicsConnector
from crm2erp.emulators.dynamics.app import CLIENT_ID, CLIENT_SECRET, TENANT_ID, make_app
from crm2erp.errors import ConfigError

FAST_RETRY = {"max_attempts": 3, "backoff_base": 0.001, "backoff_max": 0.01}
ACCOUNTS = {"entity_set": "accounts", "logical_name": "account", "key": "accountid",
            "fields": ["accountid", "name", "accountnumber", "modifiedon"],
            "alternate_key": ["accountnumber"]}


def connector(url, **extra):
    return DynamicsConnector(DynamicsConfig.model_validate({
        "environment_url": url, "tenant_id": TENANT_ID, "authority_url": url,
        "retry": FAST_RETRY, "auth": {"type": "client_credentials", "client_id": CLIENT_ID,
                                      "client_secret": CLIENT_SECRET}, **extra}))


@pytest.fixture
def env(serve):
    app = make_app(seed=5, accounts=8, contacts_per_account=1)
    return serve(app)


def test_unknown_column_in_a_write_stops_the_run_naming_it(env):
    conn = connector(env.base_url)
    before = env.count("accounts")
    rows = env.sample_rows("accounts", 2)
    rows[1]["colour"] = "red"
    with pytest.raises(ConfigError, match="'colour' does not exist on type"):
        conn.upsert("accounts", rows)
    assert env.count("accounts") == before + 1     # the row before it went in, nothing after


def test_unknown_entity_set_in_a_write_stops_the_run_naming_it(env):
    conn = connector(env.base_url, streams={"accounts": {**ACCOUNTS, "entity_set": "acounts"}})
    with pytest.raises(ConfigError, match="Resource not found for the segment 'acounts"):
        conn.upsert("accounts", env.sample_rows("accounts", 1))


def test_unknown_column_in_a_read_is_a_configuration_error(env):
    conn = connector(env.base_url, streams={"accounts": {
        **ACCOUNTS, "fields": [*ACCOUNTS["fields"], "colour"]}})
    with pytest.raises(ConfigError, match="0x0: Could not find a property named 'colour'"):
        list(conn.read("accounts"))


def test_unknown_entity_set_in_a_read_is_a_configuration_error(env):
    conn = connector(env.base_url, streams={"accounts": {**ACCOUNTS, "entity_set": "acount"}})
    with pytest.raises(ConfigError, match="0x8006088a.*'acount"):
        list(conn.read("accounts"))


def test_check_lists_every_stream_at_fault(env):
    conn = connector(env.base_url, streams={
        "a": {**ACCOUNTS, "entity_set": "acount"},
        "b": {**ACCOUNTS, "fields": ["accountid", "colour"]},
        "c": ACCOUNTS})
    with pytest.raises(ConfigError) as info:
        conn.check()
    text = str(info.value)
    assert "stream 'a'" in text and "'acount" in text
    assert "stream 'b'" in text and "'colour'" in text
    assert "stream 'c'" not in text


def test_a_value_the_column_refuses_fails_only_its_row(env):
    conn = connector(env.base_url)
    rows = env.sample_rows("accounts", 3)
    rows[1]["name"] = "X" * 400
    results = conn.upsert("accounts", rows)
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error.startswith("0x80044331: A validation error occurred")
    stored = {r["accountnumber"]: r for r in env.env.all("accounts")}
    assert stored[rows[2]["accountnumber"]]["name"] == rows[2]["name"]   # read back
    assert rows[1]["accountnumber"] not in stored


def test_write_back_to_a_row_that_is_gone_fails_only_that_row(env):
    conn = connector(env.base_url)
    account = env.env.all("accounts")[0]["accountid"]
    results = conn.update("accounts", [
        {"accountid": "00000000-0000-0000-0000-000000000001", "accountnumber": "C-1"},
        {"accountid": account, "accountnumber": "C-2"}])
    assert [r.action for r in results] == [WriteAction.FAILED, WriteAction.UPDATED]
    assert results[0].error.startswith("0x80040217")
    assert {r["accountid"]: r for r in env.env.all("accounts")}[account]["accountnumber"] \
        == "C-2"

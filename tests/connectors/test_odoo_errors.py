"""Odoo error classes, one test per row of the table in docs/connectors/odoo.md.

Odoo answers a failed JSON-RPC call with HTTP 200 and ``{"jsonrpc": "2.0",
"id": N, "error": {"code": 200, "message": "Odoo Server Error", "data":
{"name": "<exception class>", "message", "arguments", "context", "debug"}}}``
(``odoo/http.py``); an unknown model is ``odoo.exceptions.UserError``
``Object x.y doesn't exist`` (``odoo/service/model.py``), an unknown field
``builtins.ValueError`` ``Invalid field 'f' on model 'm'``.
"""

from __future__ import annotations

import pytest

from crm2erp.connectors.odoo import OdooConfig, OdooConnector
from crm2erp.emulators.odoo.app import DATABASE, PASSWORD, USERNAME, make_app
from crm2erp.errors import ConfigError, Crm2ErpError, FatalError

COMPANIES = {"model": "res.partner", "fields": ["name", "ref", "email"], "key_field": "ref",
             "domain": [["is_company", "=", True]]}


def connector(url, **extra):
    return OdooConnector(OdooConfig.model_validate({
        "url": url, "database": DATABASE, "username": USERNAME, "password": PASSWORD,
        "retry": {"max_attempts": 3, "backoff_base": 0.001, "backoff_max": 0.01}, **extra}))


def rpc_error(name, message, call_id=1):
    return {"jsonrpc": "2.0", "id": call_id, "error": {
        "code": 200, "message": "Odoo Server Error",
        "data": {"name": name, "message": message, "arguments": [message], "context": {},
                 "debug": f"Traceback (most recent call last):\n  ...\n{name}: {message}\n"}}}


@pytest.fixture
def odoo(serve):
    return serve(make_app(seed=4, companies=6))


def test_unknown_model_on_read_is_a_configuration_error_naming_it(odoo):
    with connector(odoo.base_url, streams={"companies": {**COMPANIES,
                                                         "model": "res.partnr"}}) as conn:
        with pytest.raises(ConfigError, match="model 'res.partnr' does not exist"):
            list(conn.read("companies"))


def test_unknown_model_on_write_is_a_configuration_error_naming_it(odoo):
    with connector(odoo.base_url, streams={"companies": {**COMPANIES,
                                                         "model": "res.partnr"}}) as conn:
        with pytest.raises(ConfigError, match="res.partnr"):
            conn.upsert("companies", [{"ref": "CRM-1", "name": "Neukunde GmbH"}])


def test_unknown_field_on_write_is_a_configuration_error_naming_it(odoo):
    with connector(odoo.base_url, streams={"companies": COMPANIES}) as conn:
        row = {**odoo.sample_rows("companies", 1)[0], "colour": "red"}
        row.pop("country_code")
        with pytest.raises(ConfigError, match="Invalid field 'colour'"):
            conn.upsert("companies", [row])


def test_a_user_error_on_read_stops_the_run_with_odoos_message(odoo):
    with connector(odoo.base_url, streams={"companies": COMPANIES}) as conn:
        conn.rpc.authenticate()
        odoo.reply_next(200, rpc_error("odoo.exceptions.UserError",
                                       "You are not allowed to read partners of company B"))
        with pytest.raises(FatalError, match="not allowed to read partners") as info:
            list(conn.read("companies"))
    assert isinstance(info.value, Crm2ErpError) and "Traceback" not in str(info.value)


def test_a_validation_error_fails_only_its_record(odoo):
    with connector(odoo.base_url, streams={"companies": COMPANIES}) as conn:
        rows = [{k: v for k, v in r.items() if k != "country_code"}
                for r in odoo.sample_rows("companies", 3)]
        rows[1].pop("name")
        results = conn.upsert("companies", rows)
    assert [r.ok for r in results] == [True, False, True]
    stored = {r["ref"]: r for r in odoo.db.search_read(    # read back from the database
        "res.partner", [["ref", "in", [r["ref"] for r in rows]]], ["ref", "name"])}
    assert stored[rows[0]["ref"]]["name"] == rows[0]["name"]
    assert stored[rows[2]["ref"]]["name"] == rows[2]["name"]
    assert rows[1]["ref"] not in stored


def test_check_lists_every_stream_at_fault(odoo):
    with connector(odoo.base_url, streams={
            "a": {**COMPANIES, "model": "res.partnr"},
            "b": {**COMPANIES, "fields": ["name", "shoe_size"]},
            "c": COMPANIES}) as conn:
        with pytest.raises(ConfigError) as info:
            conn.check()
    text = str(info.value)
    assert "stream 'a'" in text and "res.partnr" in text
    assert "stream 'b'" in text and "shoe_size" in text and "stream 'c'" not in text

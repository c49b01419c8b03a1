"""Odoo connector behaviour beyond the conformance suite, over the loopback emulator."""

from __future__ import annotations

import pytest

from crm2erp.connectors.base import Cursor, DeleteMode, WriteAction
from crm2erp.connectors.odoo import OdooConfig, OdooConnector
from crm2erp.connectors.odoo.rpc import OdooRecordError, error_from_body
from crm2erp.connectors.odoo.source import normalize_record, odoo_datetime
from crm2erp.emulators.odoo.app import DATABASE, PASSWORD, USERNAME, make_app
from crm2erp.errors import ConfigError, FatalError, RetriableError


def config(url: str, **extra) -> OdooConfig:
    return OdooConfig.model_validate({
        "url": url, "database": DATABASE, "username": USERNAME, "password": PASSWORD,
        "page_size": 50, "retry": {"max_attempts": 4, "backoff_base": 0.001,
                                   "backoff_max": 0.01}, **extra})


@pytest.fixture
def emulator(serve):
    app = make_app(seed=9, companies=60)
    return serve(app)


@pytest.fixture
def odoo(emulator):
    with OdooConnector(config(emulator.base_url)) as conn:
        yield conn


def keys(batches):
    return [str(r["id"]) for b in batches for r in b.rows]


# -- pure functions ---------------------------------------------------------
def test_error_bodies_are_sorted_into_record_fatal_and_retriable_errors():
    def body(name, message):
        return {"code": 200, "message": "Odoo Server Error",
                "data": {"name": name, "message": message}}

    refused = error_from_body(body("odoo.exceptions.ValidationError", "Contacts require a "
                                   "name"), "object.execute_kw")
    assert isinstance(refused, OdooRecordError) and refused.message == "Contacts require a name"
    assert isinstance(error_from_body(body("odoo.exceptions.AccessDenied", "Access Denied"),
                                      "x"), FatalError)
    assert isinstance(error_from_body(body("builtins.ValueError",
                                           "Invalid field 'foo' on model 'res.partner'"),
                                      "x"), ConfigError)
    assert isinstance(error_from_body(body("psycopg2.errors.SerializationFailure",
                                           "could not serialize access"), "x"), RetriableError)


def test_cursor_values_become_odoo_timestamps_and_wire_values_plain_ones():
    assert odoo_datetime("2025-03-01T10:15:30.999+01:00") == "2025-03-01 09:15:30"
    assert odoo_datetime("2025-03-01T10:15:30Z") == "2025-03-01 10:15:30"
    types = {"parent_id": {"type": "many2one"}, "email": {"type": "char"},
             "is_company": {"type": "boolean"}, "child_ids": {"type": "one2many"}}
    row = normalize_record({"id": 3, "parent_id": [7, "Acme"], "email": False,
                            "is_company": False, "child_ids": False}, types)
    assert row == {"id": 3, "parent_id": 7, "parent_id_name": "Acme", "email": None,
                   "is_company": False, "child_ids": []}


# -- reading ------------------------------------------------------------------
def test_a_mass_update_larger_than_a_page_is_read_once_by_keyset(odoo, emulator):
    last = list(odoo.read("companies"))[-1].cursor
    touched = emulator.touch("companies", 60)          # 60 rows, one write_date, 2 pages
    batches = list(odoo.read("companies", last, batch_size=7))
    assert sorted(keys(batches), key=int) == sorted(touched, key=int)
    positions = [(b.cursor.value, b.cursor.key) for b in batches]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    domains = [call for call in emulator.calls if call == ("res.partner", "search_read")]
    assert len(domains) >= 2


def test_lost_opportunities_are_rows_and_archived_partners_deletions(odoo, emulator):
    leads = [r for b in odoo.read("opportunities") for r in b.rows]
    lost = [r for r in leads if r["won_status"] == "lost"]
    assert lost and all(r["active"] is False for r in lost)
    assert len(leads) == emulator.count("opportunities")
    assert all(isinstance(r["stage_id"], int) and r["stage_id_name"] for r in leads)
    last = list(odoo.read("companies"))[-1].cursor
    gone = emulator.delete_records("companies", 2)
    batches = list(odoo.read("companies", last))
    assert sorted(k for b in batches for k in b.deleted_keys) == sorted(gone)


def test_invoices_embed_their_lines_with_exact_amounts(odoo):
    invoices = [r for b in odoo.read("invoices") for r in b.rows]
    assert invoices
    for invoice in invoices:
        assert invoice["move_type"] == "out_invoice" and invoice["invoice_line_ids"]
        total = sum(line["price_subtotal"] for line in invoice["invoice_line_ids"])
        assert total == invoice["amount_untaxed"]
        assert invoice["payment_state"] in ("paid", "not_paid", "partial", "in_payment")


def test_future_cursor_reads_nothing_and_check_names_missing_fields(emulator):
    broken = config(emulator.base_url, streams={
        "companies": {"model": "res.partner", "fields": ["name", "no_such_field"]}})
    with OdooConnector(broken) as conn:
        with pytest.raises(ConfigError, match="no_such_field"):
            conn.check()
    with OdooConnector(config(emulator.base_url)) as conn:
        assert list(conn.read("companies", Cursor("2999-01-01T00:00:00Z"))) == []


def test_wrong_database_is_fatal(emulator):
    with OdooConnector(config(emulator.base_url, database="nope")) as conn:
        with pytest.raises(FatalError, match="does not exist"):
            conn.check()


# -- writing ------------------------------------------------------------------
def test_a_create_whose_reply_is_lost_is_not_duplicated(odoo, emulator):
    rows = emulator.sample_rows("customers", 3)
    before = emulator.count("customers")
    emulator.cut_reply_of("create")                     # Odoo commits, the reply is cut
    results = odoo.upsert("customers", rows)
    assert [r.action for r in results] == [WriteAction.CREATED] * 3
    assert emulator.count("customers") == before + 3
    refs = [r["ref"] for r in emulator.records("customers")]
    assert all(refs.count(row["ref"]) == 1 for row in rows)


def test_unknown_reference_codes_fail_only_their_record(odoo, emulator):
    rows = emulator.sample_rows("customers", 2)
    rows[0]["country_code"] = "XX"
    results = odoo.upsert("customers", rows)
    assert [r.ok for r in results] == [False, True]
    assert "res.country" in results[0].error and "'XX'" in results[0].error
    partner = odoo.lookup("customers", [rows[1]["ref"]])[rows[1]["ref"]]
    assert partner["country_code"] == "DE"


def test_confirmed_orders_keep_their_lines_unless_they_change(odoo, emulator):
    [order] = emulator.sample_rows("sale_orders", 1)
    [created] = odoo.upsert("sale_orders", [order])
    assert created.action is WriteAction.CREATED
    saved = odoo.lookup("sale_orders", [order["origin"]])[order["origin"]]
    assert saved["state"] == "sale"                      # confirmed after writing
    order["client_order_ref"] = "PO-1"
    [same_lines] = odoo.upsert("sale_orders", [order])
    assert same_lines.action is WriteAction.UPDATED and same_lines.target_id == created.target_id
    order["order_line"][0]["product_uom_qty"] = 5
    [changed] = odoo.upsert("sale_orders", [order])
    assert changed.action is WriteAction.FAILED
    assert "once the sales order is confirmed" in changed.error
    saved = odoo.lookup("sale_orders", [order["origin"]])[order["origin"]]
    assert saved["client_order_ref"] == "PO-1"
    assert [line["product_uom_qty"] for line in saved["order_line"]] == [2]


def test_archive_delete_and_access_loss(odoo, emulator):
    [row] = emulator.sample_rows("customers", 1)
    [result] = odoo.upsert("customers", [row])
    before = emulator.count("customers")
    [archived] = odoo.delete("customers", [result.target_id], DeleteMode.ARCHIVE)
    assert archived.ok and emulator.count("customers") == before - 1
    emulator.exhaust_limit()
    with pytest.raises(FatalError, match="Access Denied"):
        odoo.upsert("customers", emulator.sample_rows("customers", 1))


def test_the_docs_examples_load(tmp_path, emulator):
    import re
    from pathlib import Path

    from crm2erp.connectors import create_connector
    from crm2erp.mapping import load_connections

    doc = Path(__file__).resolve().parents[2] / "docs" / "connectors" / "odoo.md"
    connection, streams = re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)[:2]
    (tmp_path / "connections.yaml").write_text(connection + streams)
    spec = load_connections(tmp_path / "connections.yaml",
                            {"ODOO_API_KEY": PASSWORD})["odoo"]
    settings = {**spec.settings, "url": emulator.base_url, "database": DATABASE,
                "username": USERNAME}
    with create_connector("odoo", settings) as conn:
        assert [s.name for s in conn.streams()] == ["suppliers"]
        conn.check()
        assert conn.stream("suppliers").writable
        assert list(conn.read("suppliers")) == []  # the seed has no suppliers


def test_update_writes_by_id_and_never_creates(odoo, emulator):
    companies = emulator.records("companies")
    count = emulator.count("companies")
    results = odoo.update("companies", [
        {"id": companies[0]["id"], "ref": "ERP-77"},
        {"id": str(companies[1]["id"]), "ref": "ERP-78", "country_code": "DE"},
        {"id": 999999, "ref": "ERP-00"},
        {"id": "abc", "ref": "ERP-01"},
        {"id": companies[2]["id"], "country_code": "XX"},
        {"id": True, "ref": "ERP-02"},    # not record 1
        {"id": float(companies[3]["id"]), "ref": "ERP-03"}])
    assert [r.action for r in results] == [WriteAction.UPDATED, WriteAction.UPDATED,
                                           WriteAction.FAILED, WriteAction.FAILED,
                                           WriteAction.FAILED, WriteAction.FAILED,
                                           WriteAction.FAILED]
    assert results[0].target_id == str(companies[0]["id"])
    assert "does not exist" in results[2].error and "not an Odoo record id" in results[3].error
    assert all("not an Odoo record id" in r.error for r in results[5:])
    assert "XX" in results[4].error
    assert emulator.count("companies") == count
    after = {c["id"]: c for c in emulator.records("companies")}
    assert after[companies[0]["id"]]["ref"] == "ERP-77"
    assert after[companies[1]["id"]]["ref"] == "ERP-78"
    assert "ERP-02" not in {c["ref"] for c in after.values()}
    assert after[companies[3]["id"]]["ref"] == companies[3]["ref"]
    assert after[companies[0]["id"]]["write_date"] >= companies[0]["write_date"]

"""The Tryton connector against a real trytond (see conftest.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from crm2erp.connectors import Cursor, DeleteMode, WriteAction, create_connector
from crm2erp.connectors.tryton import TrytonConfig, TrytonConnector
from crm2erp.connectors.tryton.client import dumps, loads
from crm2erp.errors import FatalError, RetriableError

MAPS = Path(__file__).resolve().parents[2] / "mappings" / "tryton"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def party(code: str, **extra) -> dict:
    return {"code": code, "name": f"Customer {code}", "email": f"{code.lower()}@example.org",
            "phone": "+49 30 1234567",
            "addresses": [{"street": "Hauptstr. 1", "postal_code": "10115", "city": "Berlin",
                           "country": "DE", "invoice": True, "delivery": True}], **extra}


def sale(ref: str, customer: str, *lines: tuple[str, str, str]) -> dict:
    return {"reference": ref, "party_code": customer, "currency": "EUR",
            "lines": [{"product": p, "quantity": q, "unit_price": u} for p, q, u in lines]}


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def count(tryton, model: str, domain: list) -> int:
    return tryton.client.model(model, "search_count", domain, context={"active_test": False})


# -- connection --------------------------------------------------------------

def test_check_passes_and_registry_builds_the_connector(tryton_server):
    connector = create_connector("tryton", tryton_server.settings())
    assert isinstance(connector, TrytonConnector)
    connector.check()
    assert connector.client.context["company"] == 1
    assert {s.name for s in connector.streams()} == {
        "parties", "products", "sales", "sale_states", "invoices", "forecasts"}
    connector.close()


def test_bad_password_is_fatal(tryton_server):
    config = TrytonConfig.model_validate(tryton_server.settings(password="wrong"))
    with TrytonConnector(config) as connector, pytest.raises(FatalError, match="refused"):
        connector.check()


def test_unreachable_server_is_retriable():
    config = TrytonConfig(url="http://127.0.0.1:9", database="x", username="a", password="b",
                          retry={"max_attempts": 1})
    with TrytonConnector(config) as connector, pytest.raises(RetriableError):
        connector.check()


def test_expired_session_logs_in_again(tryton):
    tryton.check()
    assert tryton.client.auth.fetches == 1
    tryton.client.auth._token = "bm90OmE6c2Vzc2lvbg=="   # base64 "not:a:session"
    assert tryton.client.model("party.party", "search_count", []) >= 1
    assert tryton.client.auth.fetches == 2


def test_tryton_json_encoding_round_trips():
    value = {"d": Decimal("10.10"), "day": dt.date(2026, 3, 1),
             "at": dt.datetime(2026, 3, 1, 12, 30, 5, 7), "raw": b"\x00\xff"}
    text = dumps(value)
    assert '"__class__":"Decimal"' in text
    assert loads(text) == value


# -- parties and products ------------------------------------------------------

def test_party_upsert_creates_then_updates_idempotently(tryton):
    code = unique("ACC")
    first = tryton.upsert("parties", [party(code)])
    assert first[0].action is WriteAction.CREATED and first[0].target_id
    again = tryton.upsert("parties", [party(code)])
    assert again[0].action is WriteAction.UNCHANGED
    assert again[0].target_id == first[0].target_id
    assert count(tryton, "party.party", [("code", "=", code)]) == 1

    moved = party(code, name="Renamed GmbH")
    moved["addresses"].append({"street": "Rue 2", "city": "Paris", "country": "FR"})
    changed = tryton.upsert("parties", [moved])
    assert changed[0].action is WriteAction.UPDATED
    row = tryton.lookup("parties", [code])[code]
    assert row["name"] == "Renamed GmbH"
    assert {(a["city"], a["country"]) for a in row["addresses"]} == {
        ("Berlin", "DE"), ("Paris", "FR")}
    assert {(c["type"], c["value"]) for c in row["contact_mechanisms"]} == {
        ("email", f"{code.lower()}@example.org"), ("phone", "+49 30 1234567")}


def test_refused_party_fails_alone_with_the_tryton_message(tryton):
    good1, bad, good2 = unique("ACC"), unique("ACC"), unique("ACC")
    rows = [party(good1), party(bad, email="not an e-mail"), party(good2),
            party(unique("ACC"), addresses=[{"city": "Nowhere", "country": "ZZ"}])]
    results = tryton.upsert("parties", rows)
    assert [r.action for r in results] == [WriteAction.CREATED, WriteAction.FAILED,
                                           WriteAction.CREATED, WriteAction.FAILED]
    assert "not an e-mail" in results[1].error and "Tryton refused" in results[1].error
    assert "country 'ZZ'" in results[3].error
    assert count(tryton, "party.party", [("code", "in", [good1, good2])]) == 2
    assert count(tryton, "party.party", [("code", "=", bad)]) == 0


def test_product_upsert_by_code(tryton):
    code = unique("P")
    created = tryton.upsert("products", [{"code": code, "name": "Thing", "list_price": "3.50"}])
    assert created[0].action is WriteAction.CREATED
    same = tryton.upsert("products", [{"code": code, "name": "Thing", "list_price": "3.5"}])
    assert same[0].action is WriteAction.UNCHANGED
    assert same[0].target_id == created[0].target_id
    dearer = tryton.upsert("products", [{"code": code, "name": "Thing", "list_price": "4.25"}])
    assert dearer[0].action is WriteAction.UPDATED
    assert tryton.lookup("products", [code])[code]["list_price"] == Decimal("4.25")


# -- sales ---------------------------------------------------------------------

def test_sale_is_created_confirmed_with_lines_and_amounts(tryton):
    customer, ref, bad_ref = unique("ACC"), unique("DEAL"), unique("DEAL")
    tryton.upsert("parties", [party(customer)])
    results = tryton.upsert("sales", [
        sale(ref, customer, ("P-WIDGET", "2", "10.00"), ("P-GADGET", "1", "25.50")),
        sale(bad_ref, customer, ("P-WIDGET", "1", "10.00"), ("NO-SUCH-PRODUCT", "1", "1")),
    ])
    assert results[0].action is WriteAction.CREATED
    assert results[1].action is WriteAction.FAILED
    assert "NO-SUCH-PRODUCT" in results[1].error
    row = tryton.lookup("sales", [ref])[ref]
    assert row["state"] in ("confirmed", "processing")
    assert row["total_amount"] == Decimal("45.50")
    assert [(ln["product"], ln["quantity"], ln["amount"]) for ln in row["lines"]] == [
        ("P-WIDGET", 2.0, Decimal("20.00")), ("P-GADGET", 1.0, Decimal("25.50"))]
    assert tryton.lookup("sales", [bad_ref]) == {}

    again = tryton.upsert("sales", [
        sale(ref, customer, ("P-WIDGET", "2", "10.00"), ("P-GADGET", "1", "25.50"))])
    assert again[0].action is WriteAction.UNCHANGED
    assert count(tryton, "sale.sale", [("reference", "=", ref)]) == 1
    changed = tryton.upsert("sales", [sale(ref, customer, ("P-WIDGET", "3", "10.00"))])
    assert changed[0].action is WriteAction.FAILED and "can no longer change" in changed[0].error


def test_sale_for_unknown_party_fails(tryton):
    results = tryton.upsert("sales", [sale(unique("DEAL"), unique("NOBODY"),
                                           ("P-WIDGET", "1", "10"))])
    assert results[0].action is WriteAction.FAILED
    assert "sync the account first" in results[0].error


# -- invoices and states (return flow) ---------------------------------------------

def _invoiced_sale(tryton, customer: str) -> tuple[str, list[int]]:
    ref = unique("DEAL")
    assert tryton.upsert("sales", [sale(ref, customer, ("P-GADGET", "2", "25.50"))])[0].ok
    sale_id = int(tryton.lookup("sales", [ref])[ref]["id"])
    invoices = tryton.client.model("sale.sale", "read", [sale_id], ["invoices"])[0]["invoices"]
    assert invoices, "confirming the sale should have created its invoice"
    tryton.client.model("account.invoice", "post", invoices)
    return ref, invoices


def test_invoices_stream_reads_posted_invoices_incrementally(tryton):
    customer = unique("ACC")
    tryton.upsert("parties", [party(customer)])
    ref1, inv1 = _invoiced_sale(tryton, customer)

    batches = list(tryton.read("invoices", batch_size=2))
    rows = [r for b in batches for r in b.rows]
    mine = {r["id"]: r for r in rows if r["sale_reference"] == ref1}
    assert set(mine) == set(inv1)
    invoice = mine[inv1[0]]
    assert invoice["state"] == "posted" and invoice["number"]
    assert invoice["total_amount"] == Decimal("51.00")
    assert invoice["amount_to_pay"] == Decimal("51.00")
    assert invoice["party_code"] == customer and invoice["currency"] == "EUR"
    assert invoice["invoice_date"] == dt.date.today()
    keys = [(b.cursor.value, b.cursor.key) for b in batches]
    assert keys == sorted(keys, key=lambda k: (when(k[0]), k[1]))

    watermark = batches[-1].cursor
    at_mark = {r["id"] for r in rows if r["updated_at"] == watermark.value}
    ref2, inv2 = _invoiced_sale(tryton, customer)
    newer = [r for b in tryton.read("invoices", Cursor(watermark.value)) for r in b.rows]
    ids = {r["id"] for r in newer}
    # inclusive: what changed since, plus what sits exactly on the watermark
    assert ids == set(inv2) | at_mark
    assert all(when(r["updated_at"]) >= when(watermark.value) for r in newer)
    states = [r for b in tryton.read("sale_states", Cursor(watermark.value)) for r in b.rows]
    assert ref2 in {s["reference"] for s in states}


def test_party_with_posted_invoice_is_archived_when_delete_is_refused(tryton):
    customer = unique("ACC")
    party_id = tryton.upsert("parties", [party(customer)])[0].target_id
    _invoiced_sale(tryton, customer)
    result = tryton.delete("parties", [party_id], DeleteMode.DELETE)[0]
    assert result.ok and "archived instead" in result.error
    assert tryton.lookup("parties", [customer])[customer]["active"] is False

    spare = unique("ACC")
    spare_id = tryton.upsert("parties", [party(spare)])[0].target_id
    assert tryton.delete("parties", [spare_id], DeleteMode.ARCHIVE)[0].action \
        is WriteAction.UPDATED
    assert tryton.lookup("parties", [spare])[spare]["active"] is False


def test_delete_of_an_id_tryton_lacks_fails(tryton):
    """Deletes take Tryton ids; one that finds nothing is a failure, never "done"."""
    for stream, key in (("parties", unique("ACC")), ("parties", "999999"),
                        ("products", "999999"), ("sales", "999999")):
        result = tryton.delete(stream, [key], DeleteMode.ARCHIVE)[0]
        assert result.action is WriteAction.FAILED and "in Tryton" in result.error, result


def test_parties_stream_is_ordered_and_inclusive(tryton):
    codes = [unique("ACC") for _ in range(3)]
    tryton.upsert("parties", [party(c) for c in codes])
    first = tryton.lookup("parties", [codes[0]])[codes[0]]["updated_at"]
    rows = [r for b in tryton.read("parties", Cursor(first), batch_size=1) for r in b.rows]
    assert set(codes) <= {r["code"] for r in rows}
    assert all(when(r["updated_at"]) >= when(first) for r in rows)
    order = [(when(r["updated_at"]), r["code"]) for r in rows]
    assert order == sorted(order)


# -- the shipped mapping files, end to end ---------------------------------------

def test_mapping_files_carry_canonical_records_to_tryton_and_back(tryton):
    from crm2erp.mapping import DictResolver, compile_mapping, load_mapping

    maps = {name: compile_mapping(load_mapping(MAPS / f"{name}.map.yaml"),
                                  system="tryton")
            for name in ("party.out", "sale.out", "invoice.in")}
    account_id, order_id = unique("acc"), unique("so")
    account = {"id": account_id, "name": "Mapped GmbH", "email": "billing@example.org",
               "billing_address": {"street": "Ring 5", "postal_code": "1010", "city": "Wien",
                                   "country": "AT"}}
    party_row = maps["party.out"].apply(account)
    written = tryton.upsert("parties", [party_row])[0]
    assert written.action is WriteAction.CREATED, written.error
    resolver = DictResolver({("Account", "tryton", written.target_id): account_id})

    order = {"id": order_id, "account_id": account_id, "order_date": dt.date.today(),
             "currency": "EUR", "lines": [{"product_code": "P-WIDGET", "quantity": 3,
                                           "unit_price": Decimal("10.00")}]}
    sale_result = tryton.upsert("sales", [maps["sale.out"].apply(order, resolver)])[0]
    assert sale_result.action is WriteAction.CREATED, sale_result.error
    sale_id = int(sale_result.target_id)
    invoices = tryton.client.model("sale.sale", "read", [sale_id], ["invoices"])[0]["invoices"]
    tryton.client.model("account.invoice", "post", invoices)

    row = tryton.reader.rows("invoices", invoices)[0]
    canonical = maps["invoice.in"].apply(row, resolver)
    assert canonical["account_id"] == account_id
    assert canonical["sales_order_id"] == order_id
    assert canonical["status"] == "posted"
    assert canonical["total_amount"] == Decimal("30.00")
    assert canonical["amount_due"] == Decimal("30.00")
    addresses = tryton.lookup("parties", [account_id])[account_id]["addresses"]
    assert addresses == [{"street": "Ring 5", "postal_code": "1010", "city": "Wien",
                          "country": "AT", "invoice": True, "delivery": False}]


def test_confirmed_sale_cannot_be_cancelled_but_a_draft_can(tryton_server, tryton):
    customer, ref, draft_ref = unique("ACC"), unique("DEAL"), unique("DEAL")
    tryton.upsert("parties", [party(customer)])
    sale_id = tryton.upsert("sales", [sale(ref, customer, ("P-WIDGET", "1", "10"))])[0].target_id
    refused = tryton.delete("sales", [sale_id], DeleteMode.ARCHIVE)[0]
    assert refused.action is WriteAction.FAILED and "only cancels drafts" in refused.error

    drafts = TrytonConnector(TrytonConfig.model_validate(
        tryton_server.settings(confirm_sales=False)))
    draft = drafts.upsert("sales", [sale(draft_ref, customer, ("P-WIDGET", "1", "10"))])[0]
    assert draft.ok
    assert drafts.lookup("sales", [draft_ref])[draft_ref]["state"] == "draft"
    assert drafts.delete("sales", [draft.target_id], DeleteMode.DELETE)[0].action \
        is WriteAction.UPDATED
    assert drafts.lookup("sales", [draft_ref]) == {}
    drafts.close()

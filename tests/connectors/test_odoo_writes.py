"""Odoo write semantics (docs/connectors/odoo.md, "Write semantics"): child partners
for addresses and contacts, archive/delete by id. Results are read back over the
emulator's JSON-RPC (``execute_kw``), as any Odoo client would."""

from __future__ import annotations

import pytest
import requests

from crm2erp.connectors.base import DeleteMode, WriteAction
from crm2erp.connectors.odoo import OdooConnector
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.emulators.odoo.app import DATABASE, PASSWORD, make_app

from .test_odoo import config

UID = 2  # the emulator's admin user


@pytest.fixture
def emulator(serve):
    app = make_app(seed=5, companies=4)
    return serve(app)


@pytest.fixture
def odoo(emulator):
    with OdooConnector(config(emulator.base_url)) as conn:
        yield conn


def rpc(emulator, model, method, args, kwargs=None):
    body = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
        "service": "object", "method": "execute_kw",
        "args": [DATABASE, UID, PASSWORD, model, method, args, kwargs or {}]}}
    reply = requests.post(f"{emulator.base_url}/jsonrpc", json=body).json()
    assert "error" not in reply, reply
    return reply["result"]


def children(emulator, parent_id, active_test=True):
    return rpc(emulator, "res.partner", "search_read", [[["parent_id", "=", parent_id]]], {
        "fields": ["name", "type", "ref", "street", "city", "zip", "country_id", "email",
                   "phone", "active"], "order": "id asc",
        "context": {"active_test": active_test}})


def customer(**extra):
    return {"ref": "ACC-1", "name": "Hafen Logistik GmbH", "email": "info@hafen.example",
            "invoice_address": {"street": "Postfach 1", "zip": "20457", "city": "Hamburg",
                                "country_code": "DE"}, **extra}


def test_the_invoice_address_updates_the_integrations_child_and_keeps_users_children(
        odoo, emulator):
    [created] = odoo.upsert("customers", [customer()])
    assert created.action is WriteAction.CREATED
    parent = int(created.target_id)
    [child] = children(emulator, parent)
    assert (child["type"], child["ref"], child["street"], child["city"]) == (
        "invoice", "ACC-1/invoice", "Postfach 1", "Hamburg")
    assert child["country_id"][1] == "Germany"
    [company] = rpc(emulator, "res.partner", "read", [[parent]], {"fields": ["child_ids"]})
    assert company["child_ids"] == [child["id"]]

    # an Odoo user adds an invoice address and a contact person of their own
    theirs = rpc(emulator, "res.partner", "create", [{
        "parent_id": parent, "type": "invoice", "street": "Kai 9", "city": "Hamburg"}])
    person = rpc(emulator, "res.partner", "create", [{
        "parent_id": parent, "type": "contact", "name": "Jana Berg", "email": "jb@x.example"}])

    moved = customer(invoice_address={"street": "Postfach 2", "zip": "20457",
                                      "city": "Hamburg", "country_code": "DE"})
    assert odoo.upsert("customers", [moved])[0].ok
    odoo.upsert("customers", [moved])                        # a re-run adds nothing
    after = {c["id"]: c for c in children(emulator, parent)}
    assert set(after) == {child["id"], theirs, person}       # same child, updated in place
    assert after[child["id"]]["street"] == "Postfach 2"
    assert after[theirs]["street"] == "Kai 9" and after[person]["name"] == "Jana Berg"

    # a contact person and a delivery address from the mapping become children too
    with_contact = customer(invoice_address=moved["invoice_address"],
                            delivery_address={"street": "Lager 3", "city": "Bremen",
                                              "country_code": "DE"})
    odoo.upsert("customers", [with_contact])
    kinds = {c["ref"]: c for c in children(emulator, parent) if c["ref"]}
    assert kinds["ACC-1/delivery"]["type"] == "delivery" and \
        kinds["ACC-1/delivery"]["city"] == "Bremen"

    # no invoice address any more: the integration's child is archived, users' stay
    odoo.upsert("customers", [customer(invoice_address=None)])
    active = {c["id"] for c in children(emulator, parent)}
    assert child["id"] not in active and {theirs, person} <= active
    archived = {c["id"]: c for c in children(emulator, parent, active_test=False)}
    assert archived[child["id"]]["active"] is False
    # ... and comes back, the same record, when the value does
    odoo.upsert("customers", [moved])
    [back] = [c for c in children(emulator, parent) if c["ref"] == "ACC-1/invoice"]
    assert back["id"] == child["id"] and back["street"] == "Postfach 2"


def test_a_contact_type_child_and_a_refused_child_fail_the_record(emulator):
    streams = {"customers": {"model": "res.partner", "key_field": "ref",
                             "fields": ["name", "ref", "email"],
                             "references": {"country_code": {
                                 "field": "country_id", "model": "res.country",
                                 "by": "code"}},
                             "child_partners": {"buyer": "contact",
                                                "invoice_address": "invoice"}}}
    with OdooConnector(config(emulator.base_url, streams=streams)) as odoo:
        ok, bad = odoo.upsert("customers", [
            customer(buyer={"name": "Ole Buyer", "email": "ole@hafen.example",
                            "phone": "+49 40 1"}),
            customer(ref="ACC-2", buyer={"email": "no-name@x.example"},
                     invoice_address={"city": "Kiel", "country_code": "XX"})])
    [buyer] = [c for c in children(emulator, int(ok.target_id)) if c["type"] == "contact"]
    assert (buyer["name"], buyer["email"], buyer["phone"], buyer["ref"]) == (
        "Ole Buyer", "ole@hafen.example", "+49 40 1", "ACC-1/contact")
    assert not bad.ok and bad.target_id and "was written, but its" in bad.error
    assert bad.error.endswith("its buyer: Contacts require a name")


def test_child_partners_need_a_partner_stream():
    with pytest.raises(ValueError, match="child_partners needs model res.partner"):
        config("http://x.example", streams={"orders": {
            "model": "sale.order", "key_field": "origin", "fields": ["origin"],
            "child_partners": {"invoice_address": "invoice"}}})


def test_archive_and_delete_by_id_and_missing_ids_fail(odoo, emulator):
    modes = {s.name: s.delete_modes for s in odoo.streams()}
    assert modes["customers"] == ("delete", "archive") and modes["sale_orders"] == ("delete",)
    assert modes["invoices"] == ()
    a, b = (int(r.target_id) for r in odoo.upsert("customers", [
        customer(invoice_address=None), customer(ref="ACC-2", invoice_address=None)]))
    assert odoo.delete("customers", [str(a)], DeleteMode.ARCHIVE)[0].ok
    [read] = rpc(emulator, "res.partner", "read", [[a]], {"fields": ["active"]})
    assert read["active"] is False
    assert odoo.delete("customers", [str(b)], DeleteMode.DELETE)[0].ok
    assert rpc(emulator, "res.partner", "search", [[["id", "=", b]]],
               {"context": {"active_test": False}}) == []
    [order] = rpc(emulator, "sale.order", "search_read", [[]], {"fields": ["partner_id"],
                                                                 "limit": 1})
    [kept] = odoo.delete("customers", [str(order["partner_id"][0])], DeleteMode.DELETE)
    assert not kept.ok and "archive it instead" in kept.error
    assert rpc(emulator, "res.partner", "search", [[["id", "=", order["partner_id"][0]]]])
    for mode in (DeleteMode.ARCHIVE, DeleteMode.DELETE):
        missing, junk = odoo.delete("customers", [str(b), "ACC-9"], mode)
        assert missing.action is WriteAction.FAILED
        assert missing.error == f"not found: no record '{b}' in res.partner"
        assert junk.action is WriteAction.FAILED and "not an Odoo res.partner id" in junk.error


def test_lost_create_replies_double_neither_the_customer_nor_its_child(odoo, emulator):
    emulator.cut_reply_of("create")                  # the customer's create
    emulator.cut_reply_of("create")                  # its invoice address's create
    [result] = odoo.upsert("customers", [customer()])
    assert result.action is WriteAction.CREATED and emulator._cut == []   # both were cut
    assert len(rpc(emulator, "res.partner", "search", [[["ref", "=", "ACC-1"]]])) == 1
    [child] = children(emulator, int(result.target_id))
    assert child["ref"] == "ACC-1/invoice" and child["street"] == "Postfach 1"


def test_the_write_semantics_example_loads():
    import re
    from pathlib import Path

    import yaml

    doc = (Path(__file__).resolve().parents[2] / "docs/connectors/odoo.md").read_text()
    section = doc.split("## Write semantics", 1)[1].split("\n## ", 1)[0]
    [example] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    streams = yaml.safe_load(example)["streams"]
    cfg = config("http://x.example", streams=streams)
    assert cfg.streams["customers"].child_partners == {
        "invoice_address": "invoice", "delivery_address": "delivery", "buyer": "contact"}


def test_twenty_percent_faults_write_every_customer_and_child_once():
    app = make_app(seed=6, companies=2, fault_rate=0.2, retry_after=0)
    rows = [customer(ref=f"ACC-{i}", name=f"Kunde {i}",
                     invoice_address={"street": f"Weg {i}", "city": "Kiel"})
            for i in range(20)]
    with serve_wsgi(app), OdooConnector(config(app.base_url, write_batch_size=4, retry={
            "max_attempts": 12, "backoff_base": 0, "backoff_max": 0})) as odoo:
        results = odoo.upsert("customers", rows)
        assert app.faults_injected >= 8
        app.fault_rate = 0.0
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        for row, result in zip(rows, results, strict=True):
            [partner] = rpc(app, "res.partner", "search_read", [[["ref", "=", row["ref"]]]],
                            {"fields": ["name"]})
            assert partner == {"id": int(result.target_id), "name": row["name"]}
            [child] = children(app, partner["id"])
            assert (child["ref"], child["street"]) == (f"{row['ref']}/invoice",
                                                       row["invoice_address"]["street"])

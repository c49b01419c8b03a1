"""ERPNext write semantics (docs/connectors/erpnext.md, "Write semantics"): linked
Address and Contact documents, deletes by name, per-request retry. Every test reads
the result back through the emulator's Frappe REST API."""

from __future__ import annotations

import copy
import json

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from crm2erp.connectors.base import DeleteMode, WriteAction
from crm2erp.connectors.erpnext import ErpNextConfig, ErpNextConnector
from crm2erp.connectors.erpnext.links import contact_rows
from crm2erp.emulators.erpnext.app import API_KEY, API_SECRET, make_app
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.errors import FatalError

from .test_erpnext_conformance import erp_config

AUTH = {"Authorization": f"token {API_KEY}:{API_SECRET}"}


@pytest.fixture
def emulator(serve):
    app = make_app(seed=11, customers=5, sales_invoices=1)
    return serve(app)


@pytest.fixture
def erp(emulator):
    with ErpNextConnector(erp_config(emulator.base_url), sleep=lambda _s: None) as conn:
        yield conn


def api(emulator, path, method="GET", **kw):
    resp = requests.request(method, f"{emulator.base_url}/api/resource/{path}", headers=AUTH,
                            **kw)
    return resp


def linked(emulator, doctype, customer):
    """Read back, as a Frappe client would: list by Dynamic Link, then each document."""
    filters = [["Dynamic Link", "link_doctype", "=", "Customer"],
               ["Dynamic Link", "link_name", "=", customer]]
    names = api(emulator, doctype, params={"filters": json.dumps(filters),
                                           "order_by": "creation asc"}).json()["data"]
    return [api(emulator, f"{doctype}/{n['name']}").json()["data"] for n in names]


def account(**extra):
    return {"custom_crm_id": "CRM-1", "customer_name": "Hafen Logistik GmbH",
            "customer_group": "Commercial", "customer_type": "Company",
            "contact": {"email_id": "info@hafen.example", "phone": "+49 40 111"},
            "billing_address": {"address_line1": "Kai 1", "pincode": "20457",
                                "city": "Hamburg", "country": "DE"}, **extra}


def phones(contact):
    return sorted((r["phone"], r.get("is_primary_phone", 0), r.get("is_primary_mobile_no", 0))
                  for r in contact["phone_nos"])


def test_contact_and_address_follow_the_mapped_values_and_keep_what_users_added(
        erp, emulator):
    [created] = erp.upsert("customers", [account()])
    assert created.action is WriteAction.CREATED
    customer = created.target_id
    [address] = linked(emulator, "Address", customer)
    assert (address["address_type"], address["address_line1"], address["city"],
            address["country"], address["is_primary_address"]) == (
        "Billing", "Kai 1", "Hamburg", "Germany", 1)
    [contact] = linked(emulator, "Contact", customer)
    assert contact["is_primary_contact"] == 1 and contact["email_id"] == "info@hafen.example"
    assert [(r["email_id"], r["is_primary"]) for r in contact["email_ids"]] == [
        ("info@hafen.example", 1)]
    assert phones(contact) == [("+49 40 111", 1, 0)]

    # ERP users add an address of their own (preferred) and a second number
    theirs = emulator.add_linked("Address", {
        "address_type": "Billing", "address_line1": "Postfach 9", "city": "Hamburg",
        "country": "Germany", "is_primary_address": 1,
        "links": [{"link_doctype": "Customer", "link_name": customer}]})["name"]
    api(emulator, f"Contact/{contact['name']}", "PUT", json={"phone_nos": [
        *contact["phone_nos"], {"phone": "+49 40 999", "is_primary_phone": 0}]})

    row = account(contact={"email_id": "info@hafen.example", "phone": "+49 40 222"},
                  billing_address={"address_line1": "Kai 2", "pincode": "20457",
                                   "city": "Hamburg", "country": "DE"})
    assert erp.upsert("customers", [row])[0].action is WriteAction.UPDATED
    addresses = {a["name"]: a for a in linked(emulator, "Address", customer)}
    assert set(addresses) == {address["name"], theirs}             # updated in place
    assert addresses[address["name"]]["address_line1"] == "Kai 2"
    assert addresses[address["name"]]["is_primary_address"] == 1
    assert addresses[theirs]["is_primary_address"] == 0 and \
        addresses[theirs]["address_line1"] == "Postfach 9"
    [contact] = linked(emulator, "Contact", customer)
    assert phones(contact) == [("+49 40 222", 1, 0), ("+49 40 999", 0, 0)]
    assert contact["phone"] == "+49 40 222" and contact["email_id"] == "info@hafen.example"

    # the same row again changes nothing
    before = {d["name"]: d["modified"] for kind in ("Address", "Contact")
              for d in linked(emulator, kind, customer)}
    assert erp.upsert("customers", [row])[0].action is WriteAction.UNCHANGED
    assert {d["name"]: d["modified"] for kind in ("Address", "Contact")
            for d in linked(emulator, kind, customer)} == before

    # values no longer sent go; what users added stays
    erp.upsert("customers", [account(contact={"email_id": None}, billing_address=None)])
    assert [a["name"] for a in linked(emulator, "Address", customer)] == [theirs]
    [contact] = linked(emulator, "Contact", customer)
    assert contact["email_ids"] == [] and phones(contact) == [("+49 40 999", 0, 0)]


def test_same_number_as_phone_and_mobile_is_one_row_and_shipping_is_preferred(erp, emulator):
    row = account(contact={"email_id": "a@hafen.example", "phone": "+49 40 5",
                           "mobile_no": "+49 40 5"},
                  shipping_address={"address_line1": "Lager 3", "city": "Bremen",
                                    "country": "Germany"})
    customer = erp.upsert("customers", [row])[0].target_id
    [contact] = linked(emulator, "Contact", customer)
    assert phones(contact) == [("+49 40 5", 1, 1)] and contact["mobile_no"] == "+49 40 5"
    kinds = {a["address_type"]: a for a in linked(emulator, "Address", customer)}
    assert kinds["Shipping"]["is_shipping_address"] == 1 and kinds["Shipping"]["city"] == \
        "Bremen"
    assert kinds["Billing"]["is_primary_address"] == 1


def test_a_refused_address_fails_the_record_naming_it(erp, emulator):
    row = account(billing_address={"address_line1": "Kai 1", "country": "DE"})  # no city
    [result] = erp.upsert("customers", [row])
    assert not result.ok and "Address" in result.error and "MandatoryError" in result.error
    assert result.target_id and api(emulator, f"Customer/{result.target_id}").ok
    bad = account(billing_address={"address_line1": "x", "city": "y", "country": "QQ"})
    assert "no Country with code 'QQ'" in erp.upsert("customers", [bad])[0].error


def test_archive_and_delete_by_name_and_a_missing_name_fails(erp, emulator):
    modes = {s.name: s.delete_modes for s in erp.streams()}
    assert modes == {"customers": ("delete", "archive"), "sales_orders": ("delete",),
                     "sales_invoices": ()}
    a, b = (r.target_id for r in erp.upsert("customers", [
        account(), account(custom_crm_id="CRM-2", customer_name="Nord AG")]))
    [archived] = erp.delete("customers", [a], DeleteMode.ARCHIVE)
    assert archived.action is WriteAction.UPDATED
    assert api(emulator, f"Customer/{a}").json()["data"]["disabled"] == 1
    emulator.fail_next("truncate", on="DELETE /api/resource/Customer")   # answer lost
    [deleted] = erp.delete("customers", [b], DeleteMode.DELETE)
    assert emulator.faults_pending == 0
    assert deleted.action is WriteAction.UPDATED
    gone = api(emulator, f"Customer/{b}")
    assert gone.status_code == 404 and gone.json()["exc_type"] == "DoesNotExistError"
    assert linked(emulator, "Address", b) == [] and linked(emulator, "Contact", b) == []
    used = emulator.get("sales_invoices", next(iter(emulator.store.tables["Sales Invoice"])))
    [refused] = erp.delete("customers", [used["customer"]], DeleteMode.DELETE)
    assert not refused.ok and "LinkExistsError" in refused.error
    assert api(emulator, f"Customer/{used['customer']}").ok
    for mode in (DeleteMode.DELETE, DeleteMode.ARCHIVE):
        [missing] = erp.delete("customers", ["Nobody GmbH"], mode)
        assert not missing.ok and missing.error == (
            "not found: no record 'Nobody GmbH' in Customer")


def test_a_name_given_twice_is_deleted_once_and_both_places_say_done(erp, emulator):
    [created] = erp.upsert("customers", [account()])
    name = created.target_id
    first, again = erp.delete("customers", [name, name], DeleteMode.DELETE)
    assert first.action is WriteAction.UPDATED and first.target_id == name
    assert again == first   # the repeat shares the answer, not "not found"
    assert api(emulator, f"Customer/{name}").status_code == 404
    logged = api(emulator, "Deleted Document", params={"filters": json.dumps(
        [["deleted_doctype", "=", "Customer"], ["deleted_name", "=", name]])}).json()["data"]
    assert len(logged) == 1


def test_twenty_percent_faults_complete_in_one_run_with_every_record_once():
    app = make_app(seed=4, customers=3, sales_invoices=0, fault_rate=0.2)
    app.fault_kinds = (429, 500, 503, "truncate")
    rows = [account(custom_crm_id=f"CRM-{i}", customer_name=f"Kunde {i} GmbH",
                    contact={"email_id": f"k{i}@example.com", "phone": f"+49 30 {i}"},
                    billing_address={"address_line1": f"Weg {i}", "city": "Berlin",
                                     "country": "DE"}) for i in range(25)]
    with serve_wsgi(app), ErpNextConnector(erp_config(
            app.base_url, retry={"max_attempts": 12, "backoff_base": 0.0}),
            sleep=lambda _s: None) as erp:
        results = erp.upsert("customers", rows)
        assert app.faults_injected > 20
        assert [r.action for r in results] == [WriteAction.CREATED] * 25, \
            [r.error for r in results if not r.ok]
        app.fault_rate = 0.0
        for row, result in zip(rows, results, strict=True):
            found = api(app, "Customer", params={
                "filters": json.dumps([["custom_crm_id", "=", row["custom_crm_id"]]]),
                "fields": '["name", "customer_name"]'}).json()["data"]
            assert found == [{"name": result.target_id, "customer_name": row["customer_name"]}]
            [address] = linked(app, "Address", result.target_id)
            assert address["address_line1"] == row["billing_address"]["address_line1"]
            [contact] = linked(app, "Contact", result.target_id)
            assert contact["email_id"] == row["contact"]["email_id"]
            assert phones(contact) == [(row["contact"]["phone"], 1, 0)]


# -- the Contact rows, for any current rows and values sent -------------------------
VALUES = st.sampled_from(["a", "b", "c", "d"])
FLAGS = ("is_primary_phone", "is_primary_mobile_no")


@st.composite
def contacts(draw):
    emails = [{"email_id": v, "is_primary": 0} for v in draw(st.lists(VALUES, max_size=4))]
    phones = [{"phone": v, FLAGS[0]: 0, FLAGS[1]: 0} for v in draw(st.lists(VALUES,
                                                                           max_size=4))]
    if emails and draw(st.booleans()):
        draw(st.sampled_from(emails))["is_primary"] = 1
    for flag in FLAGS:
        if phones and draw(st.booleans()):
            draw(st.sampled_from(phones))[flag] = 1
    return {"email_ids": emails, "phone_nos": phones}


def shape(emails, numbers):
    return ([(r["email_id"], r.get("is_primary", 0)) for r in emails],
            [(r["phone"], *(r.get(f, 0) for f in FLAGS)) for r in numbers])


@settings(max_examples=300, deadline=None)
@given(contacts(), st.none() | VALUES, st.none() | VALUES, st.none() | VALUES)
def test_contact_rows_put_the_sent_values_first_keep_users_rows_and_settle(
        current, email, phone, mobile):
    emails, numbers = contact_rows(copy.deepcopy(current), email, phone, mobile)
    assert [r["email_id"] for r in emails if r["is_primary"]] == ([email] if email else [])
    for flag, value in zip(FLAGS, (phone, mobile), strict=True):
        assert [r["phone"] for r in numbers if r.get(flag)] == ([value] if value else [])
    users_emails = [r["email_id"] for r in current["email_ids"]
                    if not r["is_primary"] and r["email_id"] != email]
    assert [r["email_id"] for r in emails if not r["is_primary"]] == users_emails
    users_phones = [r["phone"] for r in current["phone_nos"]
                    if not any(r[f] for f in FLAGS) and r["phone"] not in (phone, mobile)]
    assert [r["phone"] for r in numbers if not any(r.get(f) for f in FLAGS)] == users_phones
    assert sum(r["phone"] == v for r in numbers for v in {phone, mobile} - {None}) == \
        len({phone, mobile} - {None})             # a value sent is one row, not twins
    again = contact_rows({"email_ids": emails, "phone_nos": numbers}, email, phone, mobile)
    assert shape(*again) == shape(emails, numbers)   # a re-run changes nothing


def test_write_attempts_is_refused_with_what_replaced_it():
    with pytest.raises(ValueError, match="write_attempts is no longer a setting.*"
                       "retry.max_attempts"):
        ErpNextConfig.model_validate({"base_url": "https://erp.example", "write_attempts": 3})


def test_check_reads_address_and_contact_for_streams_that_write_them(erp, emulator):
    erp.check()
    emulator.reply_next(403, {"exc_type": "PermissionError", "_server_messages": "[]"},
                        on="GET /api/resource/Contact")
    with pytest.raises(FatalError, match="GET /api/resource/Contact was refused with HTTP "
                       "403.*permissions of its user"):
        erp.check()

"""What a sync leaves in a real Tryton (issue 11): CRM edits replace the values the
integration wrote, CRM deletes archive the party, reconcile is exact, Spanish and
Italian customers load, contacts are parties linked to their company.

Everything is read back from trytond over JSON-RPC (``party.party`` with its
``contact_mechanisms`` and ``addresses``, archived records with ``active_test``
False), never from the engine's counters.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

import phonenumbers
import pytest
import sqlalchemy as sa

from crm2erp.connectors import WriteAction
from crm2erp.connectors.tryton import TrytonConfig, TrytonConnector
from crm2erp.demo.emulated import _phone
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir
from crm2erp.quality.reconcile import reconcile
from crm2erp.store import StateStore
from tests.tryton.project import write_project

T0 = dt.datetime(2026, 11, 2, 9, 0)
COUNTRIES = {"ES": "Spain", "IT": "Italy", "DE": "Germany", "FR": "France"}
ALL = {"active_test": False}


def e164(text: str, region: str | None) -> str:
    return phonenumbers.format_number(phonenumbers.parse(text, region),
                                      phonenumbers.PhoneNumberFormat.E164)


def _accounts(tag: str, per_country: int = 10) -> list[dict]:
    rng = random.Random(11)
    rows = []
    for n, code in enumerate([c for c in COUNTRIES for _ in range(per_country)]):
        rows.append({"id": f"{tag}-{n:03d}", "company_name": f"Cliente {tag} {n} S.L.",
                     "account_type": "Customer", "email": f"compras{n}@{tag.lower()}.example",
                     "phone": _phone(rng, code), "vat_id": None, "currency": "EUR",
                     "segment": "SMB", "street": f"Calle {n}", "zip": f"{28000 + n}",
                     "city": "Ciudad", "country": COUNTRIES[code], "region": code,
                     "updated_at": T0 + dt.timedelta(seconds=n), "is_deleted": False})
    return rows


MATCH_YAML = """\
entity: account
blocking:
  - [{field: name, transform: [company, first:4]}]
deterministic:
  - {name: tax_id, fields: [{field: tax_id, transform: tax_id}]}
comparisons:
  - {field: name, method: jaro_winkler, transform: company, thresholds: [0.88],
     m: [0.7, 0.25, 0.05], u: [0.001, 0.01, 0.989]}
lambda: 0.01
thresholds: {upper: 0.99, lower: 0.5}
"""


def _project(folder, crm_url: str, server, extra: str = ""):
    demo, tryton = pack_dir("demo") / "maps", pack_dir("tryton")
    write_project(folder, server, crm_url, {
        "accounts": {"table": "accounts", "key": "id", "cursor": "updated_at",
                     "soft_delete_column": "is_deleted"}}, {
        "accounts.flow.yaml": f"""
            flow: t11_accounts
            entity: Account
            source: {{connection: crm, stream: accounts, mapping: {demo}/crm_account.in.map.yaml}}
            target: {{connection: erp, stream: parties, mapping: {tryton}/party.out.map.yaml}}
            incremental: {{cursor: updated_at, lookback: 1m, batch_size: 25}}
            delete_policy: archive
            """ + extra,
        "match.yaml": MATCH_YAML})
    return load_project(folder)


def _crm(tmp_path, rows):
    crm_url = f"sqlite:///{tmp_path / 'crm.db'}"
    meta = sa.MetaData()
    table = sa.Table("accounts", meta, *(sa.Column(name, sa.Boolean if name == "is_deleted"
                                                   else sa.DateTime if name == "updated_at"
                                                   else sa.String(200),
                                                   primary_key=name == "id")
                                         for name in rows[0] if name != "region"))
    crm = sa.create_engine(crm_url)
    meta.create_all(crm)
    with crm.begin() as conn:
        conn.execute(table.insert(), [{k: v for k, v in r.items() if k != "region"}
                                      for r in rows])
    return crm_url, crm, table


def _parties(tryton, codes) -> dict[str, dict]:
    """code -> the party as Tryton shows it: ``phone`` and ``email`` are Tryton's own
    (the party's function fields: its first ones), the invoice address the first address
    flagged invoice in Tryton's order, plus every active child with its write date."""
    call = tryton.client.model
    parties = call("party.party", "search_read", [("code", "in", list(codes))], 0, None,
                   None, ["code", "active", "phone", "email", "write_date"])
    ids = [p["id"] for p in parties]
    cms = call("party.contact_mechanism", "search_read", [("party", "in", ids)], 0, None,
               None, ["party", "type", "value", "value_compact", "write_date"])
    addrs = call("party.address", "search_read", [("party", "in", ids)], 0, None, None,
                 ["party", "street_unstructured", "city", "country.code", "invoice",
                  "write_date"])
    out = {}
    for p in parties:
        mine = [c for c in cms if c["party"] == p["id"]]
        places = [a for a in addrs if a["party"] == p["id"]]
        out[p["code"]] = {
            "id": p["id"], "active": p["active"], "write_date": p["write_date"],
            "phone": e164(p["phone"], None) if p["phone"] else None, "email": p["email"],
            "invoice_address": next(((a["street_unstructured"], a["city"],
                                      a["country."]["code"]) for a in places if a["invoice"]),
                                    None),
            "phones": [c["value_compact"] for c in mine if c["type"] == "phone"],
            "children": [(c["type"], c["value"], c["write_date"]) for c in mine] + [
                (a["street_unstructured"], a["city"], a["write_date"]) for a in places]}
    return out


def _run(project, store, flow="t11_accounts"):
    with Engine(project, store) as engine:
        return engine.run(flow)


def _reconcile(project, store):
    with Engine(project, store) as engine:
        return reconcile(engine.runner("t11_accounts"), save=False)


def test_edits_replace_deletes_archive_and_reconcile_is_exact(tryton_server, tryton, tmp_path):
    tag = f"I{uuid.uuid4().hex[:6].upper()}"
    rows = _accounts(tag)
    crm_url, crm, table = _crm(tmp_path, rows)
    project = _project(tmp_path / "project", crm_url, tryton_server)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        first = _run(project, store)
        letters = store.dead_letters(status=("open", "parked"), limit=50)
        assert [(d.source_key, d.error) for d in letters] == []
        assert first.counts["created"] == 40
        codes = store.canonical_ids("Account", "crm", [r["id"] for r in rows])

        # Spanish and Italian customers are there, with their country and phone
        before = _parties(tryton, codes.values())
        for r in rows:
            got = before[codes[r["id"]]]
            assert got["invoice_address"] == (r["street"], r["city"], r["region"])
            assert got["phone"] == e164(r["phone"], r["region"])
            assert got["email"] == r["email"]

        # a clean sync reconciles with no difference at all, other parties out of scope
        clean = _reconcile(project, store)
        assert clean.clean, (dict(clean.counts), clean.details)
        assert clean.counts["matched"] == 40 and clean.counts["target_count"] == 40
        assert clean.counts["out_of_scope"] >= 1          # at least the company's own party

        # an ERP user adds a phone to a party whose CRM record will be edited
        clerk = TrytonConnector(TrytonConfig.model_validate(
            tryton_server.settings(username="clerk")))
        edited = rows[:5] + rows[10:15]                   # 5 Spanish, 5 Italian customers
        kept_by_clerk = _phone(random.Random(99), "ES")
        clerk.client.model("party.contact_mechanism", "create", [{
            "party": before[codes[edited[0]["id"]]]["id"], "type": "phone",
            "value": kept_by_clerk}])
        before = _parties(tryton, codes.values())

        old_phones = {r["id"]: e164(r["phone"], r["region"]) for r in edited}
        rng = random.Random(5)
        with crm.begin() as conn:
            for n, r in enumerate(edited):
                r.update(phone=_phone(rng, r["region"]), email=f"new{n}@{tag.lower()}.example",
                         street=f"Nueva Via {n}", city="Otra Ciudad",
                         updated_at=T0 + dt.timedelta(hours=1, seconds=n))
                conn.execute(table.update().where(table.c.id == r["id"]).values(
                    phone=r["phone"], email=r["email"], street=r["street"], city=r["city"],
                    updated_at=r["updated_at"]))
        second = _run(project, store)
        assert second.counts["updated"] == 10 and second.counts["failed"] == 0

        after = _parties(tryton, codes.values())
        edited_codes = {codes[r["id"]] for r in edited}
        for r in edited:
            got = after[codes[r["id"]]]
            assert got["phone"] == e164(r["phone"], r["region"])
            assert got["email"] == r["email"]
            assert got["invoice_address"] == (r["street"], r["city"], r["region"])
            assert old_phones[r["id"]] not in got["phones"] or \
                old_phones[r["id"]] == got["phone"]      # the new number may be the old one
        assert after[codes[edited[0]["id"]]]["phones"][-1] == e164(kept_by_clerk, "ES")
        unchanged = {code: p for code, p in before.items() if code not in edited_codes}
        assert {code: after[code] for code in unchanged} == unchanged

        # the retired values are archived, not deleted
        old_mail = before[codes[edited[1]["id"]]]["email"]
        assert tryton.client.model("party.contact_mechanism", "search_count", [
            ("party", "=", after[codes[edited[1]["id"]]]["id"]), ("value", "=", old_mail),
            ("active", "=", False)], context=ALL) == 1

        again = _reconcile(project, store)
        assert again.clean, (dict(again.counts), again.details)

        # one hand edit in Tryton: exactly one difference
        victim = after[codes[rows[30]["id"]]]
        mech = tryton.client.model("party.contact_mechanism", "search", [
            ("party", "=", victim["id"]), ("type", "=", "email")], 0, 1, None)
        clerk.client.model("party.contact_mechanism", "write", mech,
                           {"value": "typo@example.org"})
        edited_by_hand = _reconcile(project, store)
        assert edited_by_hand.counts["different"] == 1
        assert [(d["key"], d["field"]) for d in edited_by_hand.details["different"]] == [
            (codes[rows[30]["id"]], "email")]
        clerk.close()

        # a CRM delete archives the party; one deleted by hand in Tryton is a dead letter
        gone, vanished = rows[20], rows[21]
        tryton.client.model("party.party", "delete", [after[codes[vanished["id"]]]["id"]])
        with crm.begin() as conn:
            for n, r in enumerate((gone, vanished)):
                conn.execute(table.update().where(table.c.id == r["id"]).values(
                    is_deleted=True, updated_at=T0 + dt.timedelta(hours=2, seconds=n)))
        third = _run(project, store)
        assert third.counts["deleted"] == 1
        letters = store.dead_letters(status=("open",), limit=50)
        assert [(d.stage, d.source_key) for d in letters] == [("delete", vanished["id"])]
        assert "nothing to archive" in letters[0].error
    finally:
        store.close()
    party = tryton.client.model("party.party", "search_read",
                                [("code", "=", codes[gone["id"]])], 0, None, None,
                                ["active"], context=ALL)
    assert party == [{"id": after[codes[gone["id"]]]["id"], "active": False}]


def test_merged_duplicates_in_one_batch_make_one_party(tryton_server, tryton, tmp_path):
    """Two CRM records the dedupe stage merges (same VAT id) in one batch: one party,
    no dead letter, a clean run (docs/dedupe.md); the runner writes the merged record once."""
    tag = f"D{uuid.uuid4().hex[:6].upper()}"
    rows = _accounts(tag, per_country=1)[:2]
    for r in rows:
        r["vat_id"] = "ESB12345674"
    rows[1]["company_name"] = rows[0]["company_name"] + " "
    crm_url, _, _ = _crm(tmp_path, rows)
    project = _project(tmp_path / "project", crm_url, tryton_server,
                       "dedupe: {config: match.yaml}\n")
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        result = _run(project, store)
        letters = store.dead_letters(status=("open", "parked"), limit=10)
        codes = store.canonical_ids("Account", "crm", [r["id"] for r in rows])
    finally:
        store.close()
    assert [(d.stage, d.source_key, d.error) for d in letters] == []
    assert result.counts["failed"] == 0 and result.counts["created"] == 1
    assert len(set(codes.values())) == 1
    assert len(_parties(tryton, codes.values())) == 1


@pytest.mark.parametrize("mode, phones", [
    ("owned", ["+4930901820", "+4930111111"]),
    ("all", ["+4930901820"]),
    ("add", None)])
def test_replace_modes(tryton_server, tryton, mode, phones):
    code = f"RM-{uuid.uuid4().hex[:8]}"
    row = {"code": code, "name": "Modes GmbH", "phone": "+49 30 123456",
           "billing_address": {"street": "A 1", "city": "Berlin", "country": "DE"}}
    first = tryton.upsert("parties", [row])[0]
    clerk = TrytonConnector(TrytonConfig.model_validate(tryton_server.settings(username="clerk")))
    clerk.client.model("party.contact_mechanism", "create", [{
        "party": int(first.target_id), "type": "phone", "value": "+49 30 111111"}])
    clerk.close()
    moved = {**row, "phone": "+49 30 901820", "replace_contact_mechanisms": mode,
             "billing_address": {"street": "B 2", "city": "Berlin", "country": "DE"}}
    assert tryton.upsert("parties", [moved])[0].action is WriteAction.UPDATED
    assert tryton.upsert("parties", [moved])[0].action is WriteAction.UNCHANGED
    got = tryton.lookup("parties", [code])[code]
    active = [c["value"].replace(" ", "") for c in got["contact_mechanisms"]]
    if phones is None:   # add: nothing retired, nothing reordered
        assert sorted(active) == ["+4930111111", "+4930123456", "+4930901820"]
        assert {a["street"] for a in got["addresses"]} == {"A 1", "B 2"}
    else:
        assert active == phones
        assert got["billing_address"]["street"] == "B 2"
        assert [a["street"] for a in got["addresses"]] == ["B 2"]


def test_contacts_become_parties_linked_to_their_company(tryton_server, tryton, tmp_path,
                                                         monkeypatch):
    from crm2erp.emulators.hubspot import portal as hubspot_portal
    from crm2erp.emulators.hubspot.app import make_app
    from crm2erp.emulators.kernel.server import serve_wsgi

    # ids no other test on the shared server uses (party codes derive from them)
    monkeypatch.setitem(hubspot_portal._ID_BASE, "companies", 10_000_900_000)
    monkeypatch.setitem(hubspot_portal._ID_BASE, "contacts", 20_000_900_000)
    hubspot = make_app(seed=33, companies=4, contacts_per_company=2, deals_per_company=0)
    with serve_wsgi(hubspot) as url:
        project = load_project(pack_dir("packs/hubspot-tryton"), env={
            "HUBSPOT_URL": url, "TRYTON_URL": tryton_server.url,
            "TRYTON_DATABASE": tryton_server.database, "TRYTON_USER": tryton_server.username,
            "TRYTON_PASSWORD": tryton_server.password})
        store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        try:
            with Engine(project, store) as engine:
                runs = [engine.run(name) for name in ("hs_tryton_accounts",
                                                      "hs_tryton_contacts")]
            letters = store.dead_letters(status=("open", "parked"), limit=50)
            contacts = hubspot.portal.records("contacts")
            contact_codes = store.canonical_ids("Contact", "hubspot", [c["id"] for c in contacts])
            company_codes = store.canonical_ids("Account", "hubspot",
                                                [c["id"] for c in hubspot.portal.records(
                                                    "companies")])
        finally:
            store.close()
    assert [(d.flow, d.source_key, d.error) for d in letters] == []
    assert runs[1].counts["created"] == len(contacts) == 8
    call = tryton.client.model
    companies = {p["code"]: p["id"] for p in call(
        "party.party", "search_read", [("code", "in", list(company_codes.values()))], 0, None,
        None, ["code"])}
    people = {p["code"]: p for p in call(
        "party.party", "search_read", [("code", "in", list(contact_codes.values()))], 0, None,
        None, ["code", "name", "email"])}
    relations = call("party.relation.all", "search_read", [
        ("from_", "in", [p["id"] for p in people.values()])], 0, None, None,
        ["from_", "to", "type.name"])
    linked = {(r["from_"], r["to"], r["type."]["name"]) for r in relations}
    expected = set()
    for contact in contacts:
        company = hubspot.portal.associated("contacts", "companies", contact["id"])[0]
        person = people[contact_codes[contact["id"]]]
        expected.add((person["id"], companies[company_codes[company]], "Works for"))
        assert person["email"] == contact["properties"]["email"].lower()
    assert linked == expected


def test_unusable_relation_or_mode_fails_the_row_alone(tryton):
    good, bad_type, bad_mode = (f"RL-{uuid.uuid4().hex[:8]}" for _ in range(3))
    results = tryton.upsert("parties", [
        {"code": good, "name": "Good"},
        {"code": bad_type, "name": "Bad type", "relation_to": "1", "relation_type": "Cousin of"},
        {"code": bad_mode, "name": "Bad mode", "replace_contact_mechanisms": "some"}])
    assert [r.action for r in results] == [WriteAction.CREATED, WriteAction.FAILED,
                                           WriteAction.FAILED]
    assert "relation type 'Cousin of' is not in Tryton" in results[1].error
    assert "replace_contact_mechanisms 'some'" in results[2].error
    assert set(tryton.lookup("parties", [good, bad_type, bad_mode])) == {good}

"""SAP write semantics read back through the emulator's OData API: per-record retries
under injected faults, multi-valued addresses/phones/e-mails, deletes and archives."""

from __future__ import annotations

import logging

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm2erp.connectors.base import DeleteMode, WriteAction
from crm2erp.connectors.sap import SapConfig, SapConnector
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.emulators.sap.app import PASSWORD, USERNAME, make_app
from crm2erp.emulators.sap.model import TYPES
from crm2erp.errors import ConfigError

from .test_sap_conformance import sap_config

BP = "/sap/opu/odata/sap/API_BUSINESS_PARTNER"


@pytest.fixture
def raw():
    session = requests.Session()
    session.auth = (USERNAME, PASSWORD)
    session.headers["Accept"] = "application/json"
    yield session
    session.close()


def read_partners(raw, base_url: str, ext_ids: list[str]) -> dict[str, list[dict]]:
    """Business partners by external id, as SAP's OData API answers them."""
    found: dict[str, list[dict]] = {e: [] for e in ext_ids}
    url = f"{base_url}{BP}/A_BusinessPartner"
    params = {"$format": "json", "$expand": "to_BusinessPartnerAddress/to_PhoneNumber,"
              "to_BusinessPartnerAddress/to_EmailAddress"}
    while url:
        page = raw.get(url, params=params).json()["d"]
        for bp in page["results"]:
            if bp["BusinessPartnerIDByExtSystem"] in found:
                found[bp["BusinessPartnerIDByExtSystem"]].append(bp)
        url, params = page.get("__next"), None
    return found


def test_a_run_at_20_percent_faults_writes_every_record_exactly_once(raw):
    app = make_app(seed=11, business_partners=5, sales_orders=0, billing_documents=0,
                   requirements=0, fault_rate=0.2)
    waits: list[float] = []
    with serve_wsgi(app):
        rows = app.sample_rows("business_partners", 80)
        config = sap_config(app.base_url, write_batch_size=5,
                            retry={"max_attempts": 6, "backoff_base": 0.5})
        with SapConnector(config, sleep=waits.append) as conn:
            results = conn.upsert("business_partners", rows)
            lost = sum(n for status, n in conn.sap.writer.stats.by_status.items()
                       if status >= 429)
            # more lost $batch answers than the old 3-per-upsert budget allowed, each
            # paced by the connection's backoff through the injected sleep
            assert lost >= 4
            assert len(conn.client.stats.waits) >= lost and waits
        assert [r.action for r in results] == [WriteAction.CREATED] * 80
        app.fault_rate = 0.0
        found = read_partners(raw, app.base_url,
                              [r["BusinessPartnerIDByExtSystem"] for r in rows])
    for row, result in zip(rows, results, strict=True):
        [bp] = found[row["BusinessPartnerIDByExtSystem"]]
        assert bp["BusinessPartner"] == result.target_id
        assert bp["OrganizationBPName1"] == row["OrganizationBPName1"]


def test_write_attempts_is_deprecated_and_ignored(caplog):
    with caplog.at_level(logging.WARNING, logger="crm2erp.connectors.sap"):
        config = SapConfig.model_validate({"base_url": "https://s4.example.com",
                                           "write_attempts": 3})
    assert "write_attempts" not in config.model_dump()
    assert "write_attempts is deprecated" in caplog.text and "retry.max_attempts" in caplog.text


@pytest.fixture
def sap(serve):
    return serve(make_app(seed=4, business_partners=3, sales_orders=0, billing_documents=0,
                          requirements=0))


def partner_row(app, phone: str | None, email: str | None, city: str = "Köln") -> dict:
    row = app.sample_rows("business_partners", 1)[0]
    row["to_BusinessPartnerAddress"].update(
        CityName=city, to_PhoneNumber={"PhoneNumber": phone},
        to_EmailAddress={"EmailAddress": email})
    return row


def communication(bp: dict) -> list[tuple]:
    """Per address: (city, [(phone, default)], [(e-mail, default)]), as SAP answers."""
    return [(a["CityName"],
             [(p["PhoneNumber"], p["IsDefaultPhoneNumber"]) for p in a["to_PhoneNumber"]
              ["results"]],
             [(e["EmailAddress"], e["IsDefaultEmailAddress"]) for e in a["to_EmailAddress"]
              ["results"]])
            for a in bp["to_BusinessPartnerAddress"]["results"]]


def erp_user_adds(raw, app, bp: dict, nav: str, body: dict) -> None:
    address = bp["to_BusinessPartnerAddress"]["results"][0]["__metadata"]["uri"]
    token = raw.get(f"{app.base_url}{BP}/", headers={"x-csrf-token": "Fetch"}).headers[
        "x-csrf-token"]
    assert raw.post(f"{address}/{nav}", json=body,
                    headers={"x-csrf-token": token}).status_code == 201


def test_phones_emails_and_address_follow_the_crm_and_keep_what_erp_users_added(sap, raw):
    conn = SapConnector(sap_config(sap.base_url))
    row = partner_row(sap, "+49 221 1234", "info@koeln.example")
    ext = row["BusinessPartnerIDByExtSystem"]
    [created] = conn.upsert("business_partners", [row])
    [bp] = read_partners(raw, sap.base_url, [ext])[ext]
    assert bp["BusinessPartner"] == created.target_id
    assert communication(bp) == [("Köln", [("+49 221 1234", True)],
                                  [("info@koeln.example", True)])]

    # an ERP user adds a second phone and a second address by hand
    erp_user_adds(raw, sap, bp, "to_PhoneNumber", {"PhoneNumber": "+49 221 9999"})
    token = raw.get(f"{sap.base_url}{BP}/", headers={"x-csrf-token": "Fetch"}).headers[
        "x-csrf-token"]
    assert raw.post(f"{bp['__metadata']['uri']}/to_BusinessPartnerAddress",
                    json={"CityName": "Lager Nord", "Country": "DE"},
                    headers={"x-csrf-token": token}).status_code == 201

    # the CRM changes the phone and the address
    changed = partner_row(sap, "+49 228 5555", "info@koeln.example", city="Bonn")
    changed["BusinessPartnerIDByExtSystem"] = ext
    changed["OrganizationBPName1"] = row["OrganizationBPName1"]
    [updated] = conn.upsert("business_partners", [changed])
    assert updated.action is WriteAction.UPDATED and updated.target_id == created.target_id
    [bp] = read_partners(raw, sap.base_url, [ext])[ext]
    assert communication(bp) == [
        ("Bonn", [("+49 228 5555", True), ("+49 221 9999", False)],
         [("info@koeln.example", True)]),
        ("Lager Nord", [], [])]

    # a re-run changes nothing
    assert conn.upsert("business_partners", [changed])[0].action is WriteAction.UNCHANGED

    # the CRM clears the e-mail: nothing in SAP is removed (SAP would make another
    # entry standard, possibly a user's, and a later write would take it for ours)
    changed["to_BusinessPartnerAddress"]["to_EmailAddress"] = {"EmailAddress": None}
    assert conn.upsert("business_partners", [changed])[0].action is WriteAction.UNCHANGED
    [bp] = read_partners(raw, sap.base_url, [ext])[ext]
    assert communication(bp)[0][2] == [("info@koeln.example", True)]

def test_archive_blocks_delete_marks_and_a_missing_partner_fails(sap, raw):
    conn = SapConnector(sap_config(sap.base_url))
    info = conn.stream("business_partners")
    assert info.delete_modes == ("archive", "delete")
    assert conn.stream("billing_documents").delete_modes == ()
    rows = sap.sample_rows("business_partners", 2)
    created = conn.upsert("business_partners", rows)
    ids = [r.target_id for r in created]
    archived = conn.delete("business_partners", [ids[0], "9999999"], DeleteMode.ARCHIVE)
    assert [r.action for r in archived] == [WriteAction.UPDATED, WriteAction.FAILED]
    assert "no A_BusinessPartner with BusinessPartner '9999999'" in archived[1].error
    deleted = conn.delete("business_partners", [ids[1]], DeleteMode.DELETE)
    assert [r.action for r in deleted] == [WriteAction.UPDATED]
    # again: already so, nothing to do
    assert conn.delete("business_partners", [ids[0]], DeleteMode.ARCHIVE)[0].action is \
        WriteAction.UNCHANGED
    exts = [r["BusinessPartnerIDByExtSystem"] for r in rows]
    found = read_partners(raw, sap.base_url, exts)
    [blocked], [marked] = found[exts[0]], found[exts[1]]
    assert blocked["BusinessPartnerIsBlocked"] is True
    assert blocked["IsMarkedForArchiving"] is False
    assert marked["IsMarkedForArchiving"] is True and marked["BusinessPartnerIsBlocked"] is False


def test_sales_orders_are_deleted_and_gone_when_read_back(sap, raw):
    conn = SapConnector(sap_config(sap.base_url))
    [created] = conn.upsert("business_partners", sap.sample_rows("business_partners", 1))
    order = {**sap.sample_rows("sales_orders", 1)[0], "SoldToParty": created.target_id}
    [made] = conn.upsert("sales_orders", [order])
    assert conn.stream("sales_orders").delete_modes == ("delete",)
    with pytest.raises(ConfigError, match="cannot archive"):
        conn.delete("sales_orders", [made.target_id], DeleteMode.ARCHIVE)
    [gone] = conn.delete("sales_orders", [made.target_id], DeleteMode.DELETE)
    assert gone.ok
    url = f"{sap.base_url}/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder('{made.target_id}')"
    assert raw.get(url).status_code == 404
    [again] = conn.delete("sales_orders", [made.target_id], DeleteMode.DELETE)
    assert again.action is WriteAction.FAILED and "no A_SalesOrder" in again.error


def test_a_deleted_crm_account_leaves_its_business_partner_blocked(tmp_path, raw):
    from crm2erp.demo.emulated import seed_salesforce, seed_sap
    from crm2erp.engine import Engine
    from crm2erp.mapping import load_project
    from crm2erp.mappings import pack_dir
    from crm2erp.store import StateStore

    sf_app, sap_app = seed_salesforce(accounts=6, seed=5), seed_sap()
    with serve_wsgi(sf_app) as sf_url, serve_wsgi(sap_app) as sap_url:
        project = load_project(pack_dir("packs/salesforce-sap"),
                               env={"SF_INSTANCE_URL": sf_url, "SAP_BASE_URL": sap_url})
        flow = project.flows["sf_sap_accounts"]
        project.flows["sf_sap_accounts"] = flow.model_copy(update={"delete_policy": "archive"})
        store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        try:
            with Engine(project, store) as engine:
                engine.run("sf_sap_accounts")
                synced = [a for a in sf_app.org.records("Account") if a["ERP_Id__c"]]
                [gone] = sf_app.org.delete("Account", 1)
                number = next(a["ERP_Id__c"] for a in synced if a["Id"] == gone)
                result = engine.run("sf_sap_accounts")
                assert result.counts["deleted"] == 1
        finally:
            store.close()
        url = f"{sap_url}{BP}/A_BusinessPartner('{number}')"
        bp = raw.get(url, params={"$format": "json"}).json()["d"]
    assert bp["BusinessPartnerIsBlocked"] is True
    others = [a["ERP_Id__c"] for a in synced if a["Id"] != gone]
    assert all(not p["BusinessPartnerIsBlocked"] for p in sap_app.find("business_partners")
               if p["BusinessPartner"] in others)


def test_sap_message_warnings_land_on_the_run_record(tmp_path):
    import json

    from crm2erp.demo.emulated import seed_salesforce, seed_sap
    from crm2erp.engine import Engine
    from crm2erp.mapping import load_project
    from crm2erp.mappings import pack_dir
    from crm2erp.store import StateStore

    sf_app, sap_app = seed_salesforce(accounts=2, seed=5), seed_sap()
    warning = {"code": "VF/019", "message": "Billing document 90000001 has no output",
               "severity": "warning", "target": "", "details": [
                   {"code": "VF/020", "message": "Ignored", "severity": "info"}]}
    with serve_wsgi(sf_app) as sf_url, serve_wsgi(sap_app) as sap_url:
        project = load_project(pack_dir("packs/salesforce-sap"),
                               env={"SF_INSTANCE_URL": sf_url, "SAP_BASE_URL": sap_url})
        store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        try:
            with Engine(project, store) as engine:
                sap_app.reply_next(200, {"d": {"results": []}},
                                   {"sap-message": json.dumps(warning)},
                                   on="A_BillingDocument")
                result = engine.run("sf_sap_invoices")
                again = engine.run("sf_sap_invoices")
                record = store.get_run(result.run_id)
        finally:
            store.close()
    assert result.warnings == ["sap: warning: VF/019: Billing document 90000001 has no output"]
    assert record.warning_list == result.warnings
    assert again.warnings == []   # taken once, not repeated on the next run


def _accounts_run(tmp_path, fault_rate: float):
    """One engine run of the CRM's accounts into a fresh SAP emulator at ``fault_rate``."""
    from crm2erp.demo.sample import sample_crm_rows
    from crm2erp.demo.systems import create_systems
    from crm2erp.engine import Engine
    from crm2erp.mapping import load_project
    from crm2erp.store import StateStore

    from .test_sap_mappings import _project

    tmp_path.mkdir()
    app = make_app(seed=11, business_partners=5, sales_orders=0, billing_documents=0,
                   requirements=0, page_size=20, fault_rate=fault_rate, retry_after=0)
    create_systems(f"sqlite:///{tmp_path}/crm.db", f"sqlite:///{tmp_path}/erp.db",
                   sample_crm_rows(accounts=60))
    with serve_wsgi(app):
        root = _project(tmp_path, app.base_url)
        connections = root / "connections.yaml"   # no real sleeps: zero backoff
        connections.write_text(connections.read_text().replace(
            "{max_attempts: 4, backoff_base: 0.001, backoff_max: 0.01}",
            "{max_attempts: 8, backoff_base: 0, backoff_max: 0}"))
        store = StateStore.open(f"sqlite:///{tmp_path}/state.db")
        try:
            with Engine(load_project(root), store) as engine:
                result = engine.run("sap_accounts")
            letters = sorted((d.source_key, d.error) for d in store.dead_letters(limit=100))
        finally:
            store.close()
        app.fault_rate = 0.0
        with requests.Session() as raw:
            raw.auth = (USERNAME, PASSWORD)
            raw.headers["Accept"] = "application/json"
            partners = [bp for found in read_partners(raw, app.base_url, [
                bp["BusinessPartnerIDByExtSystem"] for bp in app.find("business_partners")
            ]).values() for bp in found]
    return app, result, letters, partners


@pytest.mark.slow   # two engine runs over the emulator, one at 20% faults
def test_an_engine_run_at_20_percent_faults_ends_like_one_without(tmp_path):
    calm = _accounts_run(tmp_path / "calm", 0.0)
    app, result, letters, partners = _accounts_run(tmp_path / "faulty", 0.2)
    assert app.faults_injected >= 10
    assert result.status in ("succeeded", "partial")   # one run, not aborted
    assert result.counts == calm[1].counts and letters == calm[2]
    ext = [bp["BusinessPartnerIDByExtSystem"] for bp in partners]
    assert len(ext) == len(set(ext)) == 5 + result.counts["created"]   # each exactly once

    def state(bps):
        return sorted((bp["BusinessPartnerIDByExtSystem"], bp["OrganizationBPName1"],
                       [(a["CityName"], a["Country"])
                        for a in bp["to_BusinessPartnerAddress"]["results"]]) for bp in bps)
    assert state(partners) == state(calm[3])


phones = st.sampled_from(["+49 30 1111", "+49 30 2222", "+49 30 3333", None])


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(phones, st.booleans()), min_size=1, max_size=5))
def test_whatever_the_order_of_crm_changes_and_erp_additions_the_rules_hold(sap, raw, steps):
    """Any sequence of CRM phone values, with SAP users adding numbers in between,
    ends as the rules of docs/connectors/sap.md say (a model of them is run along):
    the standard number takes the CRM's value, replacing the one sent before; users'
    numbers stay; a CRM value emptied removes nothing."""
    conn = SapConnector(sap_config(sap.base_url))
    row = partner_row(sap, None, None)
    ext = row["BusinessPartnerIDByExtSystem"]
    model: list[list] = []   # [number, standard] in SAP's order
    for n, (phone, user_adds) in enumerate(steps):
        row["to_BusinessPartnerAddress"]["to_PhoneNumber"] = {"PhoneNumber": phone}
        assert conn.upsert("business_partners", [row])[0].ok
        standard = next((entry for entry in model if entry[1]), None)
        if phone is not None and standard is not None:
            standard[0] = phone
        elif phone is not None:
            model.append([phone, True])
        if user_adds:
            [bp] = read_partners(raw, sap.base_url, [ext])[ext]
            number = f"+41 44 {n:04d}"
            erp_user_adds(raw, sap, bp, "to_PhoneNumber", {"PhoneNumber": number})
            model.append([number, not model])
    [result] = conn.upsert("business_partners", [row])   # again: nothing changes
    assert result.action is WriteAction.UNCHANGED
    [bp] = read_partners(raw, sap.base_url, [ext])[ext]
    [(_, numbers, _)] = communication(bp)
    assert numbers == [tuple(entry) for entry in model]
    last = steps[-1][0]
    if last is not None:
        assert [number for number, standard in numbers if standard] == [last]


def test_children_written_but_not_read_are_a_configuration_error(sap):
    conn = SapConnector(sap_config(sap.base_url, streams={"business_partners": {
        "expand": ["to_BusinessPartnerAddress", "to_BusinessPartnerRole", "to_Customer"]}}))
    row = partner_row(sap, "+49 221 1234", None)
    conn.upsert("business_partners", [row])
    with pytest.raises(ConfigError, match="to_BusinessPartnerAddress/to_PhoneNumber"):
        conn.upsert("business_partners", [row])   # would add the phone a second time
    [bp] = sap.find("business_partners",
                    BusinessPartnerIDByExtSystem=row["BusinessPartnerIDByExtSystem"])
    assert len(sap.store.children(TYPES["A_BusinessPartnerAddress"],
                                  sap.store.tables["A_BusinessPartnerAddress"][
                                      (bp["BusinessPartner"], bp["to_BusinessPartnerAddress"]
                                       ["results"][0]["AddressID"])], "to_PhoneNumber")) == 1

"""Dynamics accounts -> ERPNext customers through the engine, with delete_policy: archive.

End state read back over the ERPNext emulator's REST API: each customer's linked
Contact and Address after the first run, a changed phone after the second, archived
customers after deletes in the CRM, and a delete whose customer is gone in ERPNext
dead-lettered at stage ``delete``.
"""

from __future__ import annotations

import json
import shutil

import requests

from crm2erp.emulators.dynamics.app import make_app as dynamics_app
from crm2erp.emulators.erpnext.app import API_KEY, API_SECRET
from crm2erp.emulators.erpnext.app import make_app as erpnext_app
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore

AUTH = {"Authorization": f"token {API_KEY}:{API_SECRET}"}


def get(url, path, **params):
    resp = requests.get(f"{url}/api/resource/{path}", headers=AUTH,
                        params={k: json.dumps(v) for k, v in params.items()})
    return resp


def customers(url):
    """customer_name -> Customer, for the customers the integration wrote."""
    rows = get(url, "Customer", fields=["name", "customer_name", "disabled"],
               filters=[["custom_crm_id", "is", "set"]], limit_page_length=0).json()["data"]
    return {r["customer_name"]: r for r in rows}


def linked(url, doctype, customer):
    rows = get(url, doctype, filters=[["Dynamic Link", "link_name", "=", customer]]).json()
    return [get(url, f"{doctype}/{r['name']}").json()["data"] for r in rows["data"]]


def project_dir(tmp_path):
    pack = pack_dir("packs/dynamics-erpnext")
    shutil.copy(pack / "connections.yaml", tmp_path / "connections.yaml")
    (tmp_path / "accounts.flow.yaml").write_text(f"""\
flow: accounts
entity: Account
source: {{connection: dynamics, stream: accounts,
          mapping: {pack_dir("dynamics") / "dynamics_account.in.map.yaml"}}}
target: {{connection: erpnext, stream: customers,
          mapping: {pack_dir("erpnext") / "customer.out.map.yaml"}}}
incremental: {{cursor: modifiedon, lookback: 5m, batch_size: 50}}
delete_policy: archive
""")
    return tmp_path


def test_accounts_land_with_contact_and_address_and_crm_deletes_archive(tmp_path):
    crm = dynamics_app(seed=8, accounts=8, contacts_per_account=0)
    erp = erpnext_app(seed=9, customers=2, sales_invoices=0)
    with serve_wsgi(crm) as crm_url, serve_wsgi(erp) as erp_url:
        project = load_project(project_dir(tmp_path), env={
            "D365_URL": crm_url, "D365_AUTHORITY_URL": crm_url, "ERPNEXT_URL": erp_url})
        store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        try:
            with Engine(project, store) as engine:
                first = engine.run("accounts")
                accounts = {a["accountid"]: a for a in crm.env.all("accounts")}
                written = customers(erp_url)
                assert first.counts["created"] == 8 and len(written) == 8
                for account in accounts.values():
                    name = written[account["name"]]["name"]
                    [contact] = linked(erp_url, "Contact", name)
                    assert contact["email_id"] == account["emailaddress1"]
                    assert [r["is_primary_phone"] for r in contact["phone_nos"]] == [1]
                    [address] = linked(erp_url, "Address", name)
                    assert (address["address_line1"], address["city"],
                            address["is_primary_address"]) == (
                        account["address1_line1"], account["address1_city"], 1)

                touched = crm.env.touch("accounts", 2)            # new phone numbers
                assert engine.run("accounts").counts["updated"] == 2
                for account_id in touched:
                    name = written[accounts[account_id]["name"]]["name"]
                    [contact] = linked(erp_url, "Contact", name)
                    digits = "".join(c for c in accounts[account_id]["telephone1"]
                                     if c.isdigit())
                    assert ["".join(c for c in r["phone"] if c.isdigit())
                            for r in contact["phone_nos"]] == [digits]

                gone = crm.env.delete("accounts", 3)
                lost = gone.pop()        # its customer is deleted in ERPNext meanwhile
                lost_name = written[accounts[lost]["name"]]["name"]
                requests.delete(f"{erp_url}/api/resource/Customer/{lost_name}", headers=AUTH)
                third = engine.run("accounts")
            letters = store.dead_letters(status=("open", "parked"), limit=10)
        finally:
            store.close()
        after = customers(erp_url)
    assert third.counts["deleted"] == 2
    assert sorted(after[accounts[k]["name"]]["disabled"] for k in accounts
                  if k != lost) == [0] * 5 + [1] * 2
    assert all(after[accounts[k]["name"]]["disabled"] == 1 for k in gone)
    [letter] = letters
    assert letter.stage == "delete" and letter.source_key == lost
    assert f"not found: no record {lost_name!r} in Customer" in letter.error


def test_one_run_at_twenty_percent_faults_writes_every_account_once(tmp_path):
    crm = dynamics_app(seed=5, accounts=12, contacts_per_account=0)
    erp = erpnext_app(seed=6, customers=0, sales_invoices=0, fault_rate=0.2, retry_after=0)
    erp.fault_kinds = (429, 500, 503, "truncate")
    root = project_dir(tmp_path)
    text = (root / "connections.yaml").read_text()
    (root / "connections.yaml").write_text(text.replace(
        "    type: erpnext\n", "    type: erpnext\n"
        "    retry: {max_attempts: 12, backoff_base: 0, backoff_max: 0}\n"))
    assert "max_attempts: 12" in (root / "connections.yaml").read_text()
    with serve_wsgi(crm) as crm_url, serve_wsgi(erp) as erp_url:
        project = load_project(root, env={"D365_URL": crm_url, "D365_AUTHORITY_URL": crm_url,
                                          "ERPNEXT_URL": erp_url})
        store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        try:
            with Engine(project, store) as engine:
                result = engine.run("accounts")
            letters = store.dead_letters(status=("open", "parked"), limit=10)
        finally:
            store.close()
        assert erp.faults_injected > 10
        erp.fault_rate = 0.0
        written = customers(erp_url)
        assert result.counts["created"] == 12 and letters == []
        for account in crm.env.all("accounts"):
            name = written[account["name"]]["name"]
            [contact] = linked(erp_url, "Contact", name)
            [address] = linked(erp_url, "Address", name)
            assert contact["email_id"] == account["emailaddress1"]
            assert address["address_line1"] == account["address1_line1"]
    assert len(written) == 12

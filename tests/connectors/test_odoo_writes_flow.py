"""CRM companies -> ERP customers between two Odoo emulators, through the engine, with
the billing address as the invoice child partner and delete_policy: archive.

End state read back over the ERP emulator's JSON-RPC: one invoice child per customer,
updated in place when the CRM address changes; archived customers after archives in
the CRM; an archive whose customer is gone in the ERP dead-lettered at stage delete.
"""

from __future__ import annotations

import shutil

from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.emulators.odoo.app import make_app
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore

from .test_odoo_writes import rpc

MAPPING = """\
mapping: test_customer_out
direction: outbound
entity: Account
fields:
  ref: {from: id}
  name: {from: name}
  invoice_address.street: {from: billing_address.street}
  invoice_address.zip: {from: billing_address.postal_code}
  invoice_address.city: {from: billing_address.city}
  invoice_address.country_code: {from: billing_address.country}
"""


def project_dir(tmp_path):
    shutil.copy(pack_dir("packs/odoo-odoo") / "connections.yaml", tmp_path)
    (tmp_path / "customer.out.map.yaml").write_text(MAPPING)
    (tmp_path / "accounts.flow.yaml").write_text(f"""\
flow: accounts
entity: Account
source: {{connection: crm, stream: companies,
          mapping: {pack_dir("odoo") / "crm_company.in.map.yaml"}}}
target: {{connection: erp, stream: customers, mapping: customer.out.map.yaml}}
incremental: {{cursor: write_date, lookback: 5m, batch_size: 50}}
delete_policy: archive
""")
    return tmp_path


def erp_customers(erp):
    """name -> (partner, its invoice children) of the customers the integration wrote."""
    partners = rpc(erp, "res.partner", "search_read", [[["is_company", "=", True],
                                                       ["ref", "!=", False]]],
                   {"fields": ["name", "ref", "active"], "context": {"active_test": False}})
    out = {}
    for partner in partners:
        children = rpc(erp, "res.partner", "search_read", [[["parent_id", "=", partner["id"]],
                                                           ["type", "=", "invoice"]]],
                       {"fields": ["ref", "street", "city"]})
        out[partner["name"]] = (partner, children)
    return out


def test_invoice_children_follow_the_crm_and_crm_archives_archive(tmp_path):
    crm, erp = make_app(seed=3, companies=6), make_app(seed=4, companies=0)
    with serve_wsgi(crm) as crm_url, serve_wsgi(erp) as erp_url:
        project = load_project(project_dir(tmp_path), env={"ODOO_CRM_URL": crm_url,
                                                           "ODOO_ERP_URL": erp_url})
        store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        try:
            with Engine(project, store) as engine:
                assert engine.run("accounts").counts["created"] == 6
                companies = {c["id"]: c for c in crm.records("companies")}
                first = erp_customers(erp)
                for company in companies.values():
                    partner, [child] = first[company["name"]]
                    assert child["ref"] == f"{partner['ref']}/invoice"
                    assert (child["street"], child["city"]) == (company["street"],
                                                                company["city"])

                moved = next(iter(companies))
                crm.db.call("res.partner", "write", [[moved], {"street": "Neue Strasse 5"}], {})
                assert engine.run("accounts").counts["updated"] == 1
                partner, [child] = erp_customers(erp)[companies[moved]["name"]]
                assert child["street"] == "Neue Strasse 5"
                assert child["id"] == first[companies[moved]["name"]][1][0]["id"]

                archived, lost = list(companies)[1:3], list(companies)[3]
                lost_partner = first[companies[lost]["name"]][0]["id"]
                erp.db.call("res.partner", "unlink", [[lost_partner,
                            first[companies[lost]["name"]][1][0]["id"]]], {})
                crm.db.call("res.partner", "write", [[*archived, lost], {"active": False}], {})
                third = engine.run("accounts")
            letters = store.dead_letters(status=("open", "parked"), limit=10)
        finally:
            store.close()
        after = erp_customers(erp)
    assert third.counts["deleted"] == 2
    assert sorted(after[companies[c]["name"]][0]["active"] for c in companies if c != lost) \
        == [False] * 2 + [True] * 3
    [letter] = letters
    assert letter.stage == "delete" and letter.source_key == str(lost)
    assert f"not found: no record '{lost_partner}' in res.partner" in letter.error

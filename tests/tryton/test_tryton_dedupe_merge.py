"""Issue 13 on a real trytond: duplicates synced before matching was switched on,
found by ``crm2erp dedupe scan`` and merged, when the steward accepts the pair, with
Tryton's own ``party.replace``: the loser's sale and invoice move to the survivor, the
loser is archived with ``replaced_by`` set. Read back over JSON-RPC and from the hub."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from crm2erp.connectors import WriteAction
from crm2erp.demo.systems import crm_tables
from crm2erp.engine import Engine
from crm2erp.errors import ConfigError
from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore
from tests.cli.test_dedupe_cli import crm2erp
from tests.quality.dedupe_project import MATCH_YAML, account
from tests.tryton.project import write_project
from tests.tryton.test_tryton_connector import party, sale, unique

ALL = {"active_test": False}


def _project(folder, crm_url: str, server, *, dedupe: bool) -> None:
    demo, tryton = pack_dir("demo") / "maps", pack_dir("tryton")
    write_project(folder, server, crm_url, {
        "accounts": {"table": "accounts", "key": "id", "cursor": "updated_at"}}, {
        "accounts.flow.yaml": f"""
            flow: t13_accounts
            entity: Account
            source: {{connection: crm, stream: accounts, mapping: {demo}/crm_account.in.map.yaml}}
            target: {{connection: erp, stream: parties, mapping: {tryton}/party.out.map.yaml}}
            incremental: {{cursor: updated_at, batch_size: 100}}
            """ + ("dedupe: {config: match.yaml}\n" if dedupe else ""),
        "match.yaml": MATCH_YAML})


def _parties(tryton, ids) -> dict[int, dict]:
    return {p["id"]: p for p in tryton.client.model(
        "party.party", "search_read", [("id", "in", list(ids))], 0, None, None,
        ["code", "name", "active", "replaced_by"], context=ALL)}


def test_accepted_scan_pair_merges_the_parties_with_party_replace(tryton_server, tryton,
                                                                  tmp_path):
    domain = f"mb{uuid.uuid4().hex[:6]}.example"
    rows = [account(1, "Müller Maschinenbau GmbH", email=f"info@{domain}"),
            account(2, "Mueller Maschinenbau", email=f"info@{domain}",
                    phone="+49 30 1234567"),
            account(3, "Zeta Logistics", email="hello@zeta.example", city="Hamburg")]
    crm_url = f"sqlite:///{tmp_path / 'crm.db'}"
    meta = sa.MetaData()
    accounts = crm_tables(meta)["accounts"]
    crm = sa.create_engine(crm_url)
    meta.create_all(crm)
    with crm.begin() as conn:
        conn.execute(accounts.insert(), rows)
    crm.dispose()
    folder, state_url = tmp_path / "project", f"sqlite:///{tmp_path / 'state.db'}"
    _project(folder, crm_url, tryton_server, dedupe=False)    # matching off: 3 parties
    with StateStore.open(state_url) as store, Engine(load_project(folder), store) as engine:
        assert engine.run("t13_accounts").counts["created"] == 3
        canon = store.canonical_ids("Account", "crm", ["A001", "A002"])
    survivor, loser = canon["A001"], canon["A002"]               # the older one survives
    found = {p["code"]: p["id"] for p in tryton.client.model(
        "party.party", "search_read", [("code", "in", [survivor, loser])], 0, None, None,
        ["code"])}
    survivor_party, loser_party = found[survivor], found[loser]
    ref = f"DEAL-{uuid.uuid4().hex[:8]}"                          # a sale on the loser
    [made] = tryton.upsert("sales", [sale(ref, loser, ("P-GADGET", "2", "25.50"))])
    assert made.ok, made.error
    sale_id = int(made.target_id)
    invoices = tryton.client.model("sale.sale", "read", [sale_id], ["invoices"])[0]["invoices"]
    assert invoices, "confirming the sale should have created its invoice"

    _project(folder, crm_url, tryton_server, dedupe=True)     # matching switched on
    state = ["-p", str(folder), "--state", state_url]
    scanned = crm2erp(*state, "dedupe", "scan", "t13_accounts", "--json", cwd=tmp_path)
    assert scanned.returncode == 0, scanned.stderr
    [pair] = json.loads(scanned.stdout)["pairs"]
    assert {pair["left_id"], pair["right_id"]} == {survivor, loser}
    decided = crm2erp(*state, "dedupe", "decide", str(pair["id"]), "accept", "--by", "ana",
                      cwd=tmp_path)
    assert decided.returncode == 0, decided.stdout + decided.stderr
    assert f"pair #{pair['id']} merged" in decided.stdout
    assert f"record {loser_party} merged into it by the target's own merge" in decided.stdout

    parties = _parties(tryton, [survivor_party, loser_party])
    # booleans come back as 0/1 from trytond on SQLite
    assert (bool(parties[loser_party]["active"]), parties[loser_party]["replaced_by"]) == (
        False, survivor_party)
    assert (bool(parties[survivor_party]["active"]),
            parties[survivor_party]["replaced_by"]) == (True, None)
    assert parties[survivor_party]["name"] == "Mueller Maschinenbau"   # the golden record
    [moved] = tryton.client.model("sale.sale", "read", [sale_id],
                                  ["party", "invoice_party", "shipment_party"])
    assert moved["party"] == survivor_party
    assert moved["invoice_party"] in (None, survivor_party)
    assert moved["shipment_party"] in (None, survivor_party)
    assert {i["party"] for i in tryton.client.model(
        "account.invoice", "read", invoices, ["party"])} == {survivor_party}
    assert tryton.lookup("sales", [ref])[ref]["party_code"] == survivor

    with StateStore.open(state_url) as store:
        crm_xref = store.canonical_ids("Account", "crm", ["A001", "A002"])
        erp_xref = store.canonical_ids("Account", "erp", [str(survivor_party)])
        applied = store.get_dedupe_pair(pair["id"]).details["applied"]
    assert crm_xref == {"A001": survivor, "A002": survivor}
    assert erp_xref == {str(survivor_party): survivor}
    assert applied["how"] == "merged"
    # the wizard's question (different names) was answered by the acceptance, and said so
    assert applied["note"].startswith("acknowledged: Parties have different names")
    assert applied["archived_target_id"] == str(loser_party)


def test_merge_refuses_what_it_cannot_replace_and_is_idempotent(tryton):
    assert [s.name for s in tryton.streams() if s.merges] == ["parties"]
    a, b = unique("MRG"), unique("MRG")
    name = f"Merge Twins {a} GmbH"
    left, right = (int(r.target_id) for r in tryton.upsert(
        "parties", [party(a, name=name), party(b, name=name)]))
    missing = tryton.merge("parties", "999999", str(right))
    assert missing.action is WriteAction.FAILED
    assert "no party.party with id 999999" in missing.error
    same = tryton.merge("parties", str(left), str(left))
    assert same.action is WriteAction.FAILED and "two different Tryton party ids" in same.error
    with pytest.raises(ConfigError, match="only parties are merged"):
        tryton.merge("products", "1", "2")
    assert all(p["active"] and p["replaced_by"] is None
               for p in _parties(tryton, [left, right]).values())   # nothing changed

    done = tryton.merge("parties", str(left), str(right))   # same name: Tryton asks nothing
    assert (done.action, done.target_id, done.error) == (WriteAction.UPDATED, str(left), None)
    again = tryton.merge("parties", str(left), str(right))
    assert again.action is WriteAction.UNCHANGED
    after = _parties(tryton, [left, right])
    assert (bool(after[left]["active"]), after[left]["replaced_by"]) == (False, right)
    assert bool(after[right]["active"]) and after[right]["replaced_by"] is None

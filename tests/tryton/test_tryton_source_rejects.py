"""A Tryton record the parties stream cannot key is a dead letter, never a silent skip.

The connection keys parties by ``name`` (``party.key_field``); a party created in
Tryton without a name is read as a rejected record naming ``party.party`` and its
id, the other parties reach the CRM, and ``crm2erp dlq list`` shows the letter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import sqlalchemy as sa

from crm2erp.connectors import Cursor
from crm2erp.connectors.tryton.rows import iso_utc
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.store import StateStore
from tests.tryton.project import write_project


def _project(folder, crm_url: str, server):
    return write_project(folder, server, crm_url, {
        "parties": {"table": "erp_parties", "key": "name"}}, {
        "party.in.map.yaml": """
            mapping: tryton_party_in
            direction: inbound
            entity: Account
            fields:
              name: {from: name, required: true}
              email: {from: email}
            """,
        "crm_party.out.map.yaml": """
            mapping: crm_party_out
            direction: outbound
            entity: Account
            fields:
              name: {from: name}
              email: {from: email}
            """,
        "parties.flow.yaml": """
            flow: tt_parties_back
            entity: Account
            source: {connection: erp, stream: parties, mapping: party.in.map.yaml}
            target: {connection: crm, stream: parties, mapping: crm_party.out.map.yaml}
            incremental: {cursor: updated_at, lookback: 1m}
            """}, party={"key_field": "name"})


def test_party_without_its_key_is_a_dead_letter_and_the_others_sync(
        tryton_server, tryton, tmp_path):
    tag = uuid.uuid4().hex[:8]
    names = [f"Named {tag} A", f"Named {tag} B"]
    ids = tryton.client.model("party.party", "create", [
        {"name": names[0], "contact_mechanisms": [
            ["create", [{"type": "email", "value": f"a-{tag}@example.org"}]]]},
        {"name": None}, {"name": names[1]}])
    nameless = ids[1]
    first = min(p["create_date"] for p in tryton.client.model(
        "party.party", "read", ids, ["create_date"]))

    crm_url = f"sqlite:///{tmp_path / 'crm.db'}"
    crm = sa.create_engine(crm_url)
    meta = sa.MetaData()
    table = sa.Table("erp_parties", meta, sa.Column("name", sa.String, primary_key=True),
                     sa.Column("email", sa.String))
    meta.create_all(crm)
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    store = StateStore.open(state_url)
    engine = Engine(load_project(_project(tmp_path / "project", crm_url, tryton_server)), store)
    result = engine.run("tt_parties_back", since=Cursor(iso_utc(first), ""))

    with crm.connect() as conn:
        synced = dict(conn.execute(sa.select(table.c.name, table.c.email)).all())
    assert synced == {names[0]: f"a-{tag}@example.org", names[1]: None}
    assert result.counts["read"] == 3 and result.counts["failed"] == 1

    listed = subprocess.run(
        [sys.executable, "-m", "crm2erp", "--state", state_url, "dlq", "list", "--json"],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    [letter] = json.loads(listed.stdout)["dead_letters"]
    assert (letter["flow"], letter["source_key"], letter["stage"]) == (
        "tt_parties_back", str(nameless), "read")
    assert f"party.party id {nameless}" in letter["error"]
    assert "has no 'name'" in letter["error"]

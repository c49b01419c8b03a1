"""A CRM with no built-in connector, synced end to end through YAML alone.

The project folder holds the connections.yaml and flow of
docs/connectors/rest.md plus two mappings; the CRM is the Pipedrive-like demo
API on a loopback port, the ERP a SQLite database behind the sql connector.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm2erp.emulators.rest.app import CLIENT_ID, CLIENT_SECRET, make_app
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.store import StateStore

DOC = Path(__file__).resolve().parents[2] / "docs" / "connectors" / "rest.md"
ORG_IN = """
mapping: org_in
direction: inbound
entity: Account
fields:
  name: {from: name, transforms: [strip], required: true}
  type:
    from: label
    transforms: [{value_map: {map: {customer: customer, prospect: prospect, partner: partner},
                              on_missing: error}}]
  email: {from: email, transforms: [email]}
  billing_address.street: {from: address_route}
  billing_address.postal_code: {from: address_postal_code}
  billing_address.city: {from: address_locality}
  billing_address.country: {from: address_country, transforms: [country]}
  updated_at: {from: update_time, transforms: [{datetime: {tz: UTC}}]}
"""
CUSTOMER_OUT = """
mapping: customer_out
direction: outbound
entity: Account
fields:
  crm_ref: {from: id}
  name: {from: name}
  kind: {from: type}
  email: {from: email}
  city: {from: billing_address.city}
  country: {from: billing_address.country}
"""


def doc_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


@pytest.fixture
def crm(serve):
    app = make_app(seed=11, organizations=95)
    return serve(app)


@pytest.fixture
def project(tmp_path, monkeypatch, crm):
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    meta = sa.MetaData()
    customers = sa.Table("customers", meta,
                         sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                         sa.Column("crm_ref", sa.String(64), nullable=False, unique=True),
                         sa.Column("name", sa.String(200), nullable=False),
                         sa.Column("kind", sa.String(20)),
                         sa.Column("email", sa.String(200)),
                         sa.Column("city", sa.String(100)),
                         sa.Column("country", sa.String(2)))
    engine = sa.create_engine(erp_url)
    meta.create_all(engine)
    for name, value in {"DEMO_CRM_URL": crm.base_url, "DEMO_CRM_CLIENT_ID": CLIENT_ID,
                        "DEMO_CRM_CLIENT_SECRET": CLIENT_SECRET,
                        "DEMO_ERP_URL": erp_url}.items():
        monkeypatch.setenv(name, value)
    folder = tmp_path / "project"
    folder.mkdir()
    connections, flow = doc_blocks()[:2]
    files = {"connections.yaml": connections, "organizations.flow.yaml": flow,
             "org.in.map.yaml": ORG_IN, "customer.out.map.yaml": CUSTOMER_OUT}
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    yield folder, engine, customers, tmp_path / "state.db"
    engine.dispose()


def rows(engine, table):
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(table.c.id))]


def test_yaml_only_rest_crm_syncs_and_second_run_changes_nothing(project, crm):
    folder, erp, customers, state = project
    store = StateStore.open(f"sqlite:///{state}")
    engine = Engine(load_project(folder), store)
    try:
        first = engine.run("organizations")
        landed = rows(erp, customers)
        second = engine.run("organizations")
        after_second = rows(erp, customers)
        touched = crm.touch("organizations", 2)
        crm.update(7, name="Renamed Seven GmbH")
        third = engine.run("organizations")
        fourth = engine.run("organizations")
    finally:
        engine.close()
        store.close()

    assert first.status == "succeeded", first
    assert first.mode == second.mode == "incremental"
    assert first.counts["created"] == crm.count("organizations") == 95 == len(landed)
    assert len({r["crm_ref"] for r in landed}) == 95  # one canonical id each
    berlin = next(r for r in landed if r["name"] == "Nordlicht Logistics 1")
    assert (berlin["city"], berlin["country"], berlin["kind"]) == ("Berlin", "DE", "customer")
    # nothing changed in the CRM: the re-read (lookback) writes nothing
    assert second.counts["created"] == second.counts["updated"] == 0
    assert after_second == landed
    # a change in the CRM reaches the ERP once, for exactly that record; the
    # touched ones changed only the (unmapped) owner, so their payload is the same
    assert sorted(touched) == ["1", "2"]
    assert third.counts["read"] >= 3
    assert (third.counts["created"], third.counts["updated"]) == (0, 1)
    after = rows(erp, customers)
    assert [r["name"] for r in after if r["name"] != next(
        x["name"] for x in landed if x["id"] == r["id"])] == ["Renamed Seven GmbH"]
    assert fourth.counts["updated"] == fourth.counts["created"] == 0

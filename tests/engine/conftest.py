"""A small CRM -> ERP project on real databases, for the engine tests."""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

T0 = dt.datetime(2026, 3, 1, 12, 0, 0)

CONNECTIONS = """
connections:
  crm:
    type: sql
    url: ${TEST_CRM_URL}
    streams:
      accounts: {table: accounts, key: id, cursor: updated_at}
      contacts: {table: contacts, key: id, cursor: updated_at}
  erp:
    type: sql
    url: ${TEST_ERP_URL}
    streams:
      customers: {table: customers, key: crm_ref, id_column: id}
      people: {table: people, key: crm_ref, id_column: id}
"""
ACCOUNTS_FLOW = """
flow: accounts
entity: Account
source: {connection: crm, stream: accounts, mapping: account.in.map.yaml}
target: {connection: erp, stream: customers, mapping: customer.out.map.yaml}
incremental: {cursor: updated_at, lookback: 1m, batch_size: 3}
"""
CONTACTS_FLOW = """
flow: contacts
entity: Contact
source: {connection: crm, stream: contacts, mapping: contact.in.map.yaml}
target: {connection: erp, stream: people, mapping: person.out.map.yaml}
incremental: {cursor: updated_at, lookback: 1m, batch_size: 3}
depends_on: [accounts]
"""
ACCOUNT_IN = """
mapping: account_in
direction: inbound
entity: Account
fields:
  name: {from: name, transforms: [strip]}
  type:
    from: kind
    transforms: [{value_map: {map: {C: customer, P: prospect}, on_missing: error}}]
  email: {from: email, transforms: [email]}
  billing_address.country: {from: country, transforms: [country]}
  updated_at: {from: updated_at, transforms: [{datetime: {tz: UTC}}]}
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
  country: {from: billing_address.country}
"""
CONTACT_IN = """
mapping: contact_in
direction: inbound
entity: Contact
fields:
  account_id: {from: account_id, transforms: [{xref: {entity: Account}}]}
  last_name: {from: last_name}
  updated_at: {from: updated_at, transforms: [{datetime: {tz: UTC}}]}
"""
PERSON_OUT = """
mapping: person_out
direction: outbound
entity: Contact
fields:
  crm_ref: {from: id}
  customer_id: {from: account_id, transforms: [{xref: {entity: Account}}]}
  last_name: {from: last_name}
"""


def crm_schema(meta):
    accounts = sa.Table("accounts", meta,
                        sa.Column("id", sa.String(20), primary_key=True),
                        sa.Column("name", sa.String(100)),
                        sa.Column("kind", sa.String(10)),
                        sa.Column("email", sa.String(100)),
                        sa.Column("country", sa.String(40)),
                        sa.Column("updated_at", sa.DateTime, nullable=False))
    contacts = sa.Table("contacts", meta,
                        sa.Column("id", sa.String(20), primary_key=True),
                        sa.Column("account_id", sa.String(20)),
                        sa.Column("last_name", sa.String(100)),
                        sa.Column("updated_at", sa.DateTime, nullable=False))
    return accounts, contacts


def erp_schema(meta):
    customers = sa.Table("customers", meta,
                         sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                         sa.Column("crm_ref", sa.String(64), nullable=False, unique=True),
                         sa.Column("name", sa.String(100), nullable=False),
                         sa.Column("kind", sa.String(20)),
                         sa.Column("email", sa.String(100)),
                         sa.Column("country", sa.String(2)))
    people = sa.Table("people", meta,
                      sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                      sa.Column("crm_ref", sa.String(64), nullable=False, unique=True),
                      sa.Column("customer_id", sa.Integer, nullable=False),
                      sa.Column("last_name", sa.String(100), nullable=False))
    return customers, people


@dataclass
class Systems:
    project: Path
    crm: sa.Engine
    erp: sa.Engine
    accounts: sa.Table
    contacts: sa.Table
    customers: sa.Table
    people: sa.Table
    state_url: str

    def add_accounts(self, *rows):
        with self.crm.begin() as conn:
            conn.execute(self.accounts.insert(), list(rows))

    def add_contacts(self, *rows):
        with self.crm.begin() as conn:
            conn.execute(self.contacts.insert(), list(rows))

    def erp_rows(self, table="customers"):
        table = getattr(self, table)
        with self.erp.connect() as conn:
            return [dict(r._mapping) for r in
                    conn.execute(sa.select(table).order_by(table.c.crm_ref))]


def _account(n, *, kind="C", email=None, country="Germany", at=T0, name=None):
    return {"id": f"A{n:03d}", "name": name or f" Company {n} ", "kind": kind,
            "email": email or f"info@company{n}.example", "country": country,
            "updated_at": at}


@pytest.fixture
def account():
    """Builds a CRM account row: ``account(n, kind=..., email=..., at=...)``."""
    return _account


@pytest.fixture
def t0():
    return T0


def write_project(folder: Path, **overrides) -> Path:
    files = {"connections.yaml": CONNECTIONS, "accounts.flow.yaml": ACCOUNTS_FLOW,
             "contacts.flow.yaml": CONTACTS_FLOW, "account.in.map.yaml": ACCOUNT_IN,
             "customer.out.map.yaml": CUSTOMER_OUT, "contact.in.map.yaml": CONTACT_IN,
             "person.out.map.yaml": PERSON_OUT}
    files.update(overrides)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        if text is not None:          # None leaves a default file out
            (folder / name).write_text(textwrap.dedent(text).lstrip())
    return folder


@pytest.fixture
def project_writer():
    """``project_writer(folder, **{file_name: text or None})``: the default test
    project with some files replaced or left out."""
    return write_project


def make_systems(tmp_path, monkeypatch, crm_url, erp_url, state_url) -> Systems:
    crm_meta, erp_meta = sa.MetaData(), sa.MetaData()
    accounts, contacts = crm_schema(crm_meta)
    customers, people = erp_schema(erp_meta)
    crm, erp = sa.create_engine(crm_url), sa.create_engine(erp_url)
    crm_meta.create_all(crm)
    erp_meta.create_all(erp)
    monkeypatch.setenv("TEST_CRM_URL", crm_url)
    monkeypatch.setenv("TEST_ERP_URL", erp_url)
    project = write_project(tmp_path / "project")
    return Systems(project, crm, erp, accounts, contacts, customers, people, state_url)


@pytest.fixture
def systems(tmp_path, monkeypatch):
    """CRM, ERP and state store as SQLite files."""
    s = make_systems(tmp_path, monkeypatch, f"sqlite:///{tmp_path / 'crm.db'}",
                     f"sqlite:///{tmp_path / 'erp.db'}", f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.crm.dispose()
    s.erp.dispose()


@pytest.fixture
def engine_for():
    """Open an Engine on a Systems; closed after the test."""
    from crm2erp.engine import Engine
    from crm2erp.mapping import load_project
    from crm2erp.store import StateStore

    opened = []

    def factory(s: Systems, project: Path | None = None):
        store = StateStore.open(s.state_url)
        engine = Engine(load_project(project or s.project), store)
        opened.append((engine, store))
        return engine

    yield factory
    for engine, store in opened:
        engine.close()
        store.close()


@pytest.fixture(params=["postgres", "mariadb"])
def server_systems(request, tmp_path, monkeypatch):
    """CRM, ERP and state store all on a real server (one fresh database, the store
    already migrated)."""
    url = request.getfixturevalue("pg_store_url" if request.param == "postgres"
                                  else "mysql_store_url")
    s = make_systems(tmp_path, monkeypatch, url, url, url)
    yield s
    s.crm.dispose()
    s.erp.dispose()

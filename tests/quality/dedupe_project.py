"""A small CRM -> ERP project with a ``dedupe:`` section, on SQLite files.

The demo pack's systems and mappings, an accounts flow that deduplicates
with a matching configuration whose m/u/lambda are fixed (no EM: fast and the
same scores every run), and an inbound mapping of the ERP's customers so the
stage can also match records the integration never wrote.

Weights of the configuration (log2 m/u), prior log2(0.01/0.99) = -6.63:
name exact +9.45, name similar (jaro-winkler >= 0.88) +4.64, name else -4.30;
e-mail same address +8.97, same domain +5.32, else -3.31; city same +4.17,
else -3.25; nulls 0. Upper threshold 0.99 (weight 6.6), lower 0.5 (weight 0).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import sqlalchemy as sa

from crm2erp.demo.systems import create_systems, crm_tables, erp_tables
from crm2erp.mappings import pack_dir

T0 = dt.datetime(2026, 5, 4, 9, 0, 0)

MATCH_YAML = """\
entity: account
blocking:
  - [{field: name, transform: [company, first:4]}]
  - [{field: email, transform: email_domain}]
deterministic:
  - {name: tax_id, fields: [{field: tax_id, transform: tax_id}]}
comparisons:
  - {field: name, method: jaro_winkler, transform: company, thresholds: [0.88],
     m: [0.7, 0.25, 0.05], u: [0.001, 0.01, 0.989]}
  - {field: email, method: email_domain, m: [0.5, 0.4, 0.1], u: [0.001, 0.01, 0.989]}
  - {field: billing_address.city, name: city, method: exact, transform: name,
     m: [0.9, 0.1], u: [0.05, 0.95]}
lambda: 0.01
thresholds: {upper: 0.99, lower: 0.5}
survivorship:
  default: most_complete
  source_priority: [erp, crm]
  fields: {name: source_priority, email: most_recent, phone: most_recent}
"""

ERP_CUSTOMER_IN = """\
mapping: erp_customer_in
direction: inbound
entity: Account
description: The demo ERP's customers as canonical accounts (for dedupe).
fields:
  name: {from: name}
  type: {from: kind}
  email: {from: email, transforms: [email]}
  phone: {from: phone}
  billing_address.street: {from: street}
  billing_address.postal_code: {from: postal_code}
  billing_address.city: {from: city}
  billing_address.country: {from: country}
  tax_id: {from: vat}
  currency: {from: currency}
"""

FLOW = """\
flow: accounts
entity: Account
source: {{connection: crm, stream: accounts, mapping: maps/crm_account.in.map.yaml}}
target: {{connection: erp, stream: customers, mapping: maps/erp_customer.out.map.yaml}}
incremental: {{cursor: updated_at, batch_size: 100}}
dedupe:
  config: match.yaml
  review: {review}
{extra}"""


def account(n: int, name: str, *, email: str | None = None, city: str | None = "Berlin",
            vat: str | None = None, phone: str | None = None, at: dt.datetime | None = None,
            **extra) -> dict:
    """A demo CRM accounts row."""
    row = {"id": f"A{n:03d}", "company_name": name, "account_type": "Customer",
           "email": email, "phone": phone, "street": None, "zip": None, "city": city,
           "country": "Germany", "vat_id": vat, "currency": "EUR", "segment": None,
           "erp_customer_no": None, "updated_at": at or T0 + dt.timedelta(minutes=n)}
    row.update(extra)
    return row


def make_project(folder: Path, accounts: list[dict], *, review: str = "park",
                 target: bool = False) -> Path:
    """Project + systems in ``folder``; CRM2ERP_DEMO_DIR must point at ``folder``."""
    project = folder / "project"
    shutil.copytree(pack_dir("demo"), project, ignore=shutil.ignore_patterns("__*"))
    for flow in project.glob("*.flow.yaml"):
        flow.unlink()
    extra = "  target: {mapping: maps/erp_customer.in.map.yaml}\n" if target else ""
    (project / "accounts.flow.yaml").write_text(FLOW.format(review=review, extra=extra))
    (project / "match.yaml").write_text(MATCH_YAML)
    (project / "maps" / "erp_customer.in.map.yaml").write_text(ERP_CUSTOMER_IN)
    create_systems(f"sqlite:///{folder / 'crm.db'}", f"sqlite:///{folder / 'erp.db'}",
                   {"accounts": accounts, "contacts": [], "deals": [], "deal_lines": []})
    return project


def _engine(folder: Path, name: str) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{folder / name}")


def erp_customers(folder: Path) -> list[dict]:
    engine = _engine(folder, "erp.db")
    table = erp_tables(sa.MetaData())["customers"]
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(table.c.id))]
    finally:
        engine.dispose()


def add_erp_customer(folder: Path, **values) -> None:
    engine = _engine(folder, "erp.db")
    table = erp_tables(sa.MetaData())["customers"]
    try:
        with engine.begin() as conn:
            conn.execute(table.insert().values(**values))
    finally:
        engine.dispose()


def add_crm_accounts(folder: Path, *rows: dict) -> None:
    engine = _engine(folder, "crm.db")
    table = crm_tables(sa.MetaData())["accounts"]
    try:
        with engine.begin() as conn:
            conn.execute(table.insert(), list(rows))
    finally:
        engine.dispose()


def update_crm_account(folder: Path, account_id: str, **values) -> None:
    engine = _engine(folder, "crm.db")
    table = crm_tables(sa.MetaData())["accounts"]
    try:
        with engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == account_id).values(**values))
    finally:
        engine.dispose()


ARCHIVE_FROM = "customers: {table: customers, key: crm_ref, id_column: id, cursor: updated_at}"
ARCHIVE_TO = ("customers: {table: customers, key: crm_ref, id_column: id, cursor: updated_at,"
              " archive: {column: active, value: 0}}")


def synced_before_matching(folder: Path, accounts: list[dict], *,
                           archive: bool = True, write_back: bool = False) -> Path:
    """A project whose accounts were synced once with the flow's dedupe section off,
    then switched on (duplicates in the ERP for ``dedupe scan``). With ``archive`` the
    ERP customers get an ``active`` column (1) and the stream archives by setting it 0;
    ``write_back`` writes the ERP's customer number onto the CRM account.
    CRM2ERP_DEMO_DIR must point at ``folder``."""
    from crm2erp.engine import Engine
    from crm2erp.mapping import load_project
    from crm2erp.store import StateStore

    project = make_project(folder, accounts)
    flow = project / "accounts.flow.yaml"
    with_dedupe = flow.read_text()
    if write_back:   # the ERP's customer number onto the CRM account, as the demo does
        with_dedupe = with_dedupe.replace("dedupe:", "write_back: {connection: crm, stream: "
                                          "accounts, field: erp_customer_no}\ndedupe:")
    flow.write_text(with_dedupe.split("dedupe:")[0])      # matching off
    if archive:
        engine = _engine(folder, "erp.db")
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE customers ADD COLUMN active INTEGER "
                                 "NOT NULL DEFAULT 1"))
        engine.dispose()
        connections = project / "connections.yaml"
        assert ARCHIVE_FROM in connections.read_text()
        connections.write_text(connections.read_text().replace(ARCHIVE_FROM, ARCHIVE_TO))
    with StateStore.open(f"sqlite:///{folder / 'state.db'}") as store, \
            Engine(load_project(project), store) as engine:
        result = engine.run("accounts")
    assert result.status == "succeeded" and result.counts["created"] == len(accounts)
    flow.write_text(with_dedupe)                              # matching switched on
    return project


def customer_rows(folder: Path) -> list[dict]:
    """Every ERP customer row with all its columns (``active`` included when added)."""
    engine = _engine(folder, "erp.db")
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(
                "SELECT * FROM customers ORDER BY id"))]
    finally:
        engine.dispose()

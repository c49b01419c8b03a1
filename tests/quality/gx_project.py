"""A small SQL project for the quality tests: the demo pack's systems and
mappings in a temporary folder, with clean sample accounts whose tax ids the
test takes away, and a ``quality:`` section on the accounts flow."""

from __future__ import annotations

import shutil
from pathlib import Path

import sqlalchemy as sa

from crm2erp.demo.sample import INVALID_ACCOUNTS, sample_crm_rows
from crm2erp.demo.systems import create_systems
from crm2erp.mappings import pack_dir

ACCOUNTS_FLOW = """\
flow: demo_accounts
entity: Account
source: {{connection: crm, stream: accounts, mapping: maps/crm_account.in.map.yaml}}
target: {{connection: erp, stream: customers, mapping: maps/erp_customer.out.map.yaml}}
incremental: {{cursor: updated_at, batch_size: {batch_size}}}
quality:
  threshold: {threshold}
  mask: [email, phone]
  rules:
    - expect: expect_column_values_to_not_be_null
      column: tax_id
      name: tax id present
      when: {{field: type, any_of: null}}
    - expect: regex
      column: billing_address.postal_code
      kwargs: {{regex: "^[0-9]{{5}}$"}}
      severity: warning
"""


def clean_accounts(count: int) -> list[dict]:
    """``count`` sample CRM accounts that all pass mapping and validation."""
    rows = sample_crm_rows(accounts=count + 2 * len(INVALID_ACCOUNTS))["accounts"]
    return [r for r in rows if r["id"] not in INVALID_ACCOUNTS][:count]


def make_project(folder: Path, accounts: list[dict], *, threshold: str = "2%",
                 batch_size: int = 100) -> Path:
    """The project folder; CRM2ERP_DEMO_DIR must point at ``folder`` (monkeypatch it)."""
    project = folder / "project"
    shutil.copytree(pack_dir("demo"), project, ignore=shutil.ignore_patterns("__*"))
    flow = ACCOUNTS_FLOW.format(threshold=threshold, batch_size=batch_size)
    flow = flow.replace("      when: {field: type, any_of: null}\n",
                        "      when: {field: type, equals: customer}\n")
    (project / "accounts.flow.yaml").write_text(flow)
    create_systems(f"sqlite:///{folder / 'crm.db'}", f"sqlite:///{folder / 'erp.db'}",
                   {"accounts": accounts, "contacts": [], "deals": [], "deal_lines": []})
    return project


def erp_rows(folder: Path, table: str = "customers") -> list[dict]:
    engine = sa.create_engine(f"sqlite:///{folder / 'erp.db'}")
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]
    finally:
        engine.dispose()

"""A two-way flow (CRM <-> ERP accounts): no echo, field ownership, conflicts."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest
import sqlalchemy as sa

CONNECTIONS = """
connections:
  crm:
    type: sql
    url: ${TEST_CRM_URL}
    streams:
      accounts: {table: accounts, key: id, cursor: updated_at}
  erp:
    type: sql
    url: ${TEST_ERP_URL}
    streams:
      customers: {table: customers, key: ref, id_column: id, cursor: updated_at}
"""
OWNERSHIP = """
ownership: {name: crm, email: crm, credit_limit: erp}
"""
TO_ERP = """
flow: to_erp
entity: Account
source: {connection: crm, stream: accounts, mapping: crm.in.map.yaml}
target: {connection: erp, stream: customers, mapping: erp.out.map.yaml}
incremental: {cursor: updated_at, lookback: 10m}
"""
TO_CRM = """
flow: to_crm
entity: Account
source: {connection: erp, stream: customers, mapping: erp.in.map.yaml}
target: {connection: crm, stream: accounts, mapping: crm.out.map.yaml}
incremental: {cursor: updated_at, lookback: 10m}
"""
MAPS = {
    "crm.in.map.yaml": """
        mapping: crm_in
        direction: inbound
        entity: Account
        fields:
          name: {from: name}
          email: {from: email, transforms: [email]}
          credit_limit: {from: credit_limit, transforms: [decimal]}
          currency: {value: EUR}
          updated_at: {from: updated_at, transforms: [{datetime: {tz: UTC}}]}
        """,
    "erp.out.map.yaml": """
        mapping: erp_out
        direction: outbound
        entity: Account
        fields:
          ref: {from: id}
          name: {from: name}
          email: {from: email}
          credit_limit: {from: credit_limit}
        """,
    "erp.in.map.yaml": """
        mapping: erp_in
        direction: inbound
        entity: Account
        fields:
          name: {from: name}
          email: {from: email, transforms: [email]}
          credit_limit: {from: credit_limit, transforms: [decimal]}
          currency: {value: EUR}
          updated_at: {from: updated_at, transforms: [{datetime: {tz: UTC}}]}
        """,
    "crm.out.map.yaml": """
        mapping: crm_out
        direction: outbound
        entity: Account
        fields:
          id: {from: id, transforms: [{xref: {entity: Account}}]}
          name: {from: name}
          email: {from: email}
          credit_limit: {from: credit_limit}
        """,
}


def _stamp_triggers(engine, table):
    """The systems stamp updated_at themselves, as real CRMs and ERPs do."""
    with engine.begin() as conn:
        conn.execute(sa.text(
            f"CREATE TRIGGER {table}_stamp AFTER UPDATE ON {table} "
            f"WHEN NEW.updated_at = OLD.updated_at BEGIN "
            f"UPDATE {table} SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') "
            f"WHERE rowid = NEW.rowid; END"))


@pytest.fixture
def two_way(tmp_path, monkeypatch, engine_for):
    crm_url, erp_url = f"sqlite:///{tmp_path / 'crm.db'}", f"sqlite:///{tmp_path / 'erp.db'}"
    crm, erp = sa.create_engine(crm_url), sa.create_engine(erp_url)
    meta_crm, meta_erp = sa.MetaData(), sa.MetaData()
    accounts = sa.Table("accounts", meta_crm,
                        sa.Column("id", sa.String(20), primary_key=True),
                        sa.Column("name", sa.String(100)),
                        sa.Column("email", sa.String(100)),
                        sa.Column("credit_limit", sa.Numeric(12, 2)),
                        sa.Column("updated_at", sa.DateTime, nullable=False))
    customers = sa.Table("customers", meta_erp,
                         sa.Column("id", sa.Integer, primary_key=True),
                         sa.Column("ref", sa.String(64), unique=True, nullable=False),
                         sa.Column("name", sa.String(100)),
                         sa.Column("email", sa.String(100)),
                         sa.Column("credit_limit", sa.Numeric(12, 2)),
                         sa.Column("updated_at", sa.DateTime, nullable=False,
                                   server_default=sa.text("CURRENT_TIMESTAMP")))
    meta_crm.create_all(crm)
    meta_erp.create_all(erp)
    _stamp_triggers(crm, "accounts")
    _stamp_triggers(erp, "customers")
    project = tmp_path / "project"
    project.mkdir()
    files = {"connections.yaml": CONNECTIONS, "to_erp.flow.yaml": TO_ERP + OWNERSHIP,
             "to_crm.flow.yaml": TO_CRM + OWNERSHIP, **MAPS}
    for name, text in files.items():
        (project / name).write_text(textwrap.dedent(text).lstrip())
    monkeypatch.setenv("TEST_CRM_URL", crm_url)
    monkeypatch.setenv("TEST_ERP_URL", erp_url)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1)
    with crm.begin() as conn:
        conn.execute(accounts.insert(), [
            {"id": f"A{n}", "name": f"Company {n}", "email": f"c{n}@example.com",
             "credit_limit": None, "updated_at": now} for n in range(1, 6)])

    class TwoWay:
        def __init__(self):
            self.crm, self.erp, self.accounts, self.customers = crm, erp, accounts, customers
            self.state_url = f"sqlite:///{tmp_path / 'state.db'}"
            self.project = project

        def round(self, engine):
            return [engine.run("to_erp"), engine.run("to_crm")]

        def crm_rows(self):
            with crm.connect() as conn:
                return {r.id: r for r in conn.execute(sa.select(accounts))}

        def erp_rows(self):
            with erp.connect() as conn:
                return {r.name: r for r in conn.execute(sa.select(customers))}

    yield TwoWay()
    crm.dispose()
    erp.dispose()


def _writes(results):
    return sum(r.counts["created"] + r.counts["updated"] for r in results)


def test_five_rounds_without_edits_write_nothing_after_the_first(two_way, engine_for):
    engine = engine_for(two_way)
    rounds = [two_way.round(engine) for _ in range(5)]
    assert _writes(rounds[0]) == 5                     # the five customers are created
    assert [_writes(r) for r in rounds[1:]] == [0, 0, 0, 0]
    assert len(two_way.erp_rows()) == 5


def test_owner_edits_flow_back_and_non_owner_edits_are_conflicts(two_way, engine_for):
    engine = engine_for(two_way)
    two_way.round(engine)
    with two_way.erp.begin() as conn:                  # the ERP sets a credit limit (it owns it)
        conn.execute(two_way.customers.update().where(two_way.customers.c.name == "Company 2")
                     .values(credit_limit=5000))
    to_erp, to_crm = two_way.round(engine)
    assert to_crm.counts["updated"] == 1 and to_erp.changed == 0, to_crm.counts
    assert two_way.crm_rows()["A2"].credit_limit == 5000
    assert two_way.crm_rows()["A2"].name == "Company 2"
    with two_way.crm.begin() as conn:                  # sales edits the credit limit: not theirs
        conn.execute(two_way.accounts.update().where(two_way.accounts.c.id == "A2")
                     .values(credit_limit=9999, name="Company Two"))
    to_erp, to_crm = two_way.round(engine)
    erp = two_way.erp_rows()
    assert "Company Two" in erp and erp["Company Two"].credit_limit == 5000
    [conflict] = engine.store.list_conflicts("to_erp")
    assert (conflict["field"], conflict["system"], conflict["winner"]) == \
        ("credit_limit", "crm", "erp")
    assert str(conflict["incoming"]) == "9999.00" and str(conflict["kept"]) == "5000.00"
    assert _writes(two_way.round(engine)) == 0         # and it settles


def test_conflicts_are_listed_for_the_steward(two_way, engine_for, capsys, monkeypatch):
    from crm2erp.cli import main
    from crm2erp.cli.output import console

    monkeypatch.setattr(console, "width", 200)

    engine = engine_for(two_way)
    two_way.round(engine)
    with two_way.erp.begin() as conn:
        conn.execute(two_way.customers.update().values(credit_limit=100))
    two_way.round(engine)
    with two_way.crm.begin() as conn:
        conn.execute(two_way.accounts.update().where(two_way.accounts.c.id == "A1")
                     .values(credit_limit=7))
    two_way.round(engine)
    assert main(["--state", two_way.state_url, "conflicts", "--flow", "to_erp"]) == 0
    out = capsys.readouterr().out
    assert "1 conflict(s)" in out and "credit_limit" in out and "erp" in out
    assert main(["--state", two_way.state_url, "conflicts", "--flow", "to_erp", "--json"]) == 0
    import json

    [row] = json.loads(capsys.readouterr().out)["conflicts"]
    assert (row["field"], row["system"], row["winner"], row["flow"]) == \
        ("credit_limit", "crm", "erp", "to_erp")
    assert str(row["incoming"]) == "7.00" and str(row["kept"]) == "100.00"

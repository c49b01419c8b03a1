"""The engine's promises under failed steps and hostile data (issue: no silent loss).

Every test reads the ERP back (its own table) and compares field values; the
engine's counters are never the evidence.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from crm2erp.connectors.base import WriteAction, WriteResult

DELETABLE = """
connections:
  crm:
    type: sql
    url: ${TEST_CRM_URL}
    streams:
      accounts: {table: accounts, key: id, cursor: updated_at, soft_delete_column: is_deleted}
  erp:
    type: sql
    url: ${TEST_ERP_URL}
    streams:
      customers: {table: customers, key: crm_ref, id_column: id,
                  archive: {column: active, value: false}}
"""
BY_EMAIL = """
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
      customers: {table: customers, key: email, id_column: id}
"""
ARCHIVING_FLOW = """
flow: accounts
entity: Account
source: {connection: crm, stream: accounts, mapping: account.in.map.yaml}
target: {connection: erp, stream: customers, mapping: customer.out.map.yaml}
incremental: {cursor: updated_at, lookback: 1m, batch_size: 3}
delete_policy: archive
"""


@pytest.fixture
def deletable(tmp_path, monkeypatch, systems, project_writer):
    """The default SQLite systems, with a soft-delete column in the CRM and an
    archive column in the ERP, and a flow that archives."""
    with systems.crm.begin() as conn:
        conn.execute(sa.text("ALTER TABLE accounts ADD COLUMN is_deleted BOOLEAN "
                             "NOT NULL DEFAULT 0"))
    with systems.erp.begin() as conn:
        conn.execute(sa.text("ALTER TABLE customers ADD COLUMN active BOOLEAN "
                             "NOT NULL DEFAULT 1"))
    project_writer(systems.project, **{"connections.yaml": DELETABLE,
                                       "accounts.flow.yaml": ARCHIVING_FLOW,
                                       "contacts.flow.yaml": None})
    (systems.project / "contacts.flow.yaml").unlink()
    return systems


def _crm_id(email: str) -> str:
    return "A{:03d}".format(int(re.search(r"company(\d+)", email).group(1)))


def _erp(systems, *columns):
    """ERP customers by the CRM id they came from (the e-mail carries the number)."""
    with systems.erp.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT email, {', '.join(columns)} FROM customers"))
        return {_crm_id(r[0]): tuple(r[1:]) for r in rows}


def _delete_in_crm(systems, *ids, at):
    with systems.crm.begin() as conn:
        conn.execute(sa.text("UPDATE accounts SET is_deleted = 1, updated_at = :t "
                             "WHERE id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
                     {"t": at, "ids": list(ids)})


def test_a_delete_that_crashes_is_applied_by_the_next_run(deletable, account, engine_for,
                                                          monkeypatch, t0):
    s = deletable
    s.add_accounts(*(account(n) for n in range(1, 5)))
    engine = engine_for(s)
    engine.run("accounts")
    _delete_in_crm(s, "A002", "A003", at=t0 + dt.timedelta(hours=1))

    from crm2erp.connectors.sql import SqlConnector

    def outage(self, stream, keys, mode):
        raise ConnectionError("ERP went away")
    with monkeypatch.context() as m:
        m.setattr(SqlConnector, "delete", outage)
        with pytest.raises(ConnectionError):
            engine_for(s).run("accounts")
    assert _erp(s, "active") == {f"A00{n}": (1,) for n in range(1, 5)}   # nothing archived yet
    engine_for(s).run("accounts")    # no --full-refresh, no manual step
    assert _erp(s, "active") == {"A001": (1,), "A002": (0,), "A003": (0,), "A004": (1,)}


def test_a_refused_delete_is_a_dead_letter_and_retry_applies_it(deletable, account, engine_for,
                                                               monkeypatch, t0):
    s = deletable
    s.add_accounts(*(account(n) for n in range(1, 4)))
    engine_for(s).run("accounts")
    _delete_in_crm(s, "A002", at=t0 + dt.timedelta(hours=1))
    from crm2erp.connectors.sql import SqlConnector

    def refuse(self, stream, keys, mode):
        return [WriteResult(str(k), WriteAction.FAILED, error="customer is blocked")
                for k in keys]
    with monkeypatch.context() as m:
        m.setattr(SqlConnector, "delete", refuse)
        engine = engine_for(s)
        result = engine.run("accounts")
    assert result.status == "partial"
    [letter] = engine.store.dead_letters("accounts")
    assert (letter.source_key, letter.stage) == ("A002", "delete")
    assert "customer is blocked" in letter.error
    assert _erp(s, "active")["A002"] == (1,)
    engine = engine_for(s)
    [retried] = engine.retry([letter])
    assert _erp(s, "active") == {"A001": (1,), "A002": (0,), "A003": (1,)}
    assert engine.store.get_dead_letter(letter.id).status == "resolved"
    assert retried.counts["deleted"] == 1


def test_a_source_delete_closes_the_open_dead_letter(deletable, account, engine_for, t0):
    s = deletable
    s.add_accounts(account(1), account(2, kind="Z"))      # A002 fails its value map
    engine = engine_for(s)
    engine.run("accounts")
    [letter] = engine.store.dead_letters("accounts")
    _delete_in_crm(s, "A002", at=t0 + dt.timedelta(hours=1))
    engine_for(s).run("accounts")
    assert engine.store.get_dead_letter(letter.id).status == "resolved"
    engine_for(s).retry([engine.store.get_dead_letter(letter.id)])
    assert set(_erp(s, "name")) == {"A001"}               # never resurrected


def test_retry_does_not_resurrect_a_record_deleted_after_it_failed(account, systems,
                                                                   engine_for):
    systems.add_accounts(account(1), account(2, kind="Z"))
    engine = engine_for(systems)
    engine.run("accounts")
    [letter] = engine.store.dead_letters("accounts")
    with systems.crm.begin() as conn:                      # a hard delete in the CRM
        conn.execute(sa.text("DELETE FROM accounts WHERE id = 'A002'"))
    [result] = engine_for(systems).retry([letter])
    assert set(_erp(systems, "name")) == {"A001"}
    assert engine.store.get_dead_letter(letter.id).status == "resolved"
    assert result.counts["created"] == 0


def test_retry_loads_what_the_source_holds_now_not_the_stored_copy(account, systems,
                                                                   engine_for):
    systems.add_accounts(account(1), account(2, kind="Z", name="Old Name"))
    engine = engine_for(systems)
    engine.run("accounts")
    [letter] = engine.store.dead_letters("accounts")
    with systems.crm.begin() as conn:  # fixed in the CRM without touching updated_at
        conn.execute(sa.text("UPDATE accounts SET kind = 'P', name = 'New Name' "
                             "WHERE id = 'A002'"))
    engine_for(systems).retry([letter])
    assert _erp(systems, "name", "kind")["A002"] == ("New Name", "prospect")


def test_retry_keeps_business_text_that_looks_like_a_secret(account, systems, engine_for):
    note = "Portal password=hunter2; API token: tok-123"
    systems.add_accounts(account(1, kind="Z", name=note))
    engine = engine_for(systems)
    engine.run("accounts")
    [letter] = engine.store.dead_letters("accounts")
    fixed = (systems.project / "account.in.map.yaml").read_text().replace(
        "{C: customer, P: prospect}", "{C: customer, P: prospect, Z: partner}")
    (systems.project / "account.in.map.yaml").write_text(fixed)
    engine_for(systems).retry([letter])
    assert _erp(systems, "name")["A001"] == (note,)


def test_two_crm_records_with_one_target_key_do_not_collapse(account, systems, engine_for,
                                                             project_writer, t0):
    project_writer(systems.project, **{"connections.yaml": BY_EMAIL})
    with systems.erp.begin() as conn:
        conn.execute(sa.text("CREATE UNIQUE INDEX ux_customers_email ON customers (email)"))
    same = "shared@mail.example"
    systems.add_accounts(account(1, email=same, name="First"), account(2, email=same,
                                                                       name="Second"),
                         account(3))
    engine = engine_for(systems)
    result = engine.run("accounts")
    with systems.erp.connect() as conn:
        rows = {r.email: r.name for r in conn.execute(sa.select(systems.customers))}
    assert rows[same] == "First"
    [letter] = [d for d in engine.store.dead_letters("accounts") if d.stage == "collision"]
    assert letter.source_key == "A002" and "A001" in letter.error and same in letter.error
    assert result.status == "partial"

    # across runs: a later record that takes the key of an earlier one
    systems.add_accounts(account(4, email="info@company3.example", name="Fourth",
                                 at=t0 + dt.timedelta(hours=1)))
    engine_for(systems).run("accounts")
    with systems.erp.connect() as conn:
        rows = {r.email: r.name for r in conn.execute(sa.select(systems.customers))}
    assert rows["info@company3.example"] == "Company 3"
    assert len(rows) == 2
    assert "A004" in {d.source_key for d in engine.store.dead_letters("accounts")}


def test_an_empty_key_is_a_dead_letter(account, systems, engine_for):
    systems.add_accounts(account(1), {**account(2), "id": ""})
    engine = engine_for(systems)
    result = engine.run("accounts")
    assert set(_erp(systems, "name")) == {"A001"}
    [letter] = engine.store.dead_letters("accounts")
    assert "empty key" in letter.error
    assert result.status == "partial"


STEPS = {   # step -> (the class, its method, which call of the second run crashes)
    "mapping": ("crm2erp.mapping.compiler.CompiledMapping", "apply", 2),
    "stage": ("crm2erp.quality.gx.stage.QualityStage", "process", 2),
    "write": ("crm2erp.connectors.sql.SqlConnector", "upsert", 2),
    "write-back": ("crm2erp.connectors.sql.SqlConnector", "update", 1),
    "delete": ("crm2erp.connectors.sql.SqlConnector", "delete", 1),
    "state commit": ("crm2erp.store.StateStore", "commit_batch", 2),
}
# the archiving flow with a quality stage and the ERP id written back to the CRM
EVERY_STEP_FLOW = ARCHIVING_FLOW + """\
write_back: {connection: crm, stream: accounts, field: erp_no}
quality:
  rules:
    - {expect: not_null, column: name, severity: warning}
"""


@pytest.mark.parametrize("step", sorted(STEPS))
def test_a_crash_in_any_step_loses_nothing_after_a_rerun(step, deletable, account, engine_for,
                                                         monkeypatch, t0):
    """A batch crashes at ``step``; a plain re-run ends in the true state."""
    import importlib

    s = deletable
    with s.crm.begin() as conn:
        conn.execute(sa.text("ALTER TABLE accounts ADD COLUMN erp_no VARCHAR(20)"))
    (s.project / "accounts.flow.yaml").write_text(EVERY_STEP_FLOW)
    s.add_accounts(*(account(n) for n in range(1, 7)))
    engine_for(s).run("accounts")
    later = t0 + dt.timedelta(hours=1)
    with s.crm.begin() as conn:     # edits, a new record and a delete, spread over batches
        conn.execute(sa.text("UPDATE accounts SET name = 'Renamed ' || id, updated_at = :t "
                             "WHERE id IN ('A001', 'A004')"), {"t": later})
    _delete_in_crm(s, "A005", at=later + dt.timedelta(minutes=1))
    s.add_accounts(account(7, at=later + dt.timedelta(minutes=2)))

    path, method, crash_at = STEPS[step]
    module, _, cls = path.rpartition(".")
    owner = getattr(importlib.import_module(module), cls)
    real = getattr(owner, method)
    calls = {"n": 0}

    def crash_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise RuntimeError(f"injected crash in {step}")
        return real(*args, **kwargs)
    with monkeypatch.context() as m:
        m.setattr(owner, method, crash_once)
        with pytest.raises(RuntimeError, match="injected"):
            engine_for(s).run("accounts")
    engine = engine_for(s)
    engine.run("accounts")
    assert _erp(s, "name", "active") == {
        "A001": ("Renamed A001", 1), "A002": ("Company 2", 1), "A003": ("Company 3", 1),
        "A004": ("Renamed A004", 1), "A005": ("Company 5", 0), "A006": ("Company 6", 1),
        "A007": ("Company 7", 1)}
    assert engine.store.dead_letters("accounts") == []
    with s.erp.connect() as conn:     # every CRM account carries its ERP customer's id
        erp_ids = {_crm_id(e): str(i) for e, i in conn.execute(
            sa.text("SELECT email, id FROM customers"))}
    with s.crm.connect() as conn:
        written_back = dict(conn.execute(sa.text("SELECT id, erp_no FROM accounts")).all())
    assert written_back == erp_ids


def test_a_dry_run_writes_nowhere_and_describes_every_write(deletable, account, engine_for,
                                                            t0):
    """The dry-run sink: an edit, a new record, a delete and a bad record are described;
    the ERP, the write-back column (one id is missing there), the watermark and the dead
    letters stay as they were, and the real run afterwards makes the described writes."""
    s = deletable
    with s.crm.begin() as conn:
        conn.execute(sa.text("ALTER TABLE accounts ADD COLUMN erp_no VARCHAR(20)"))
    (s.project / "accounts.flow.yaml").write_text(
        ARCHIVING_FLOW + "write_back: {connection: crm, stream: accounts, field: erp_no}\n")
    s.add_accounts(*(account(n) for n in range(1, 4)))
    engine_for(s).run("accounts")
    later = t0 + dt.timedelta(hours=1)
    with s.crm.begin() as conn:
        conn.execute(sa.text("UPDATE accounts SET name = 'Renamed', updated_at = :t "
                             "WHERE id = 'A001'"), {"t": later})
    _delete_in_crm(s, "A002", at=later)
    with s.crm.begin() as conn:       # a lost write-back: a real full refresh heals it
        conn.execute(sa.text("UPDATE accounts SET erp_no = NULL WHERE id = 'A003'"))
    s.add_accounts(account(4, at=later), account(5, email="bad@@x", at=later))
    with s.crm.connect() as conn:
        crm_before = conn.execute(sa.text("SELECT * FROM accounts ORDER BY id")).all()
    erp_before = _erp(s, "name", "active")
    engine = engine_for(s)
    mark = engine.store.get_watermark("accounts", "accounts")

    dry = engine.run("accounts", mode="full_refresh", dry_run=True)

    assert _erp(s, "name", "active") == erp_before
    with s.crm.connect() as conn:
        assert conn.execute(sa.text("SELECT * FROM accounts ORDER BY id")).all() == crm_before
    assert engine.store.get_watermark("accounts", "accounts") == mark
    assert engine.store.dead_letters("accounts") == []
    with s.erp.connect() as conn:
        customer_id = {_crm_id(e): str(i) for e, i in conn.execute(
            sa.text("SELECT email, id FROM customers"))}
    assert dry.mode == "dry_run" and dry.new_dead_letters == 1 and dry.counts["failed"] == 1

    real = engine_for(s).run("accounts")
    ref = engine.store.canonical_ids("Account", "crm", ["A001", "A004"])   # the ERP's key
    described = {(c.action, c.key): c.fields for c in dry.changes}
    assert described.pop(("update", ref["A001"])) == {"name": "Renamed"}
    assert described.pop(("archive", customer_id["A002"])) == {}
    [(action, key)] = described
    assert action == "create" and key == ref["A004"]   # A005 fails: a dead letter
    assert _erp(s, "name", "active") == {
        "A001": ("Renamed", 1), "A002": ("Company 2", 0), "A003": ("Company 3", 1),
        "A004": ("Company 4", 1)}
    assert (real.counts["created"], real.counts["updated"], real.counts["deleted"]) == (1, 1, 1)

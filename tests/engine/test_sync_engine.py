"""The engine's guarantees, end to end on real databases (SQLite here;
PostgreSQL and MariaDB in test_sync_servers.py)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from crm2erp.errors import FatalError, LockHeldError

T0 = dt.datetime(2026, 3, 1, 12, 0, 0)


def test_first_run_loads_good_records_and_dead_letters_bad_ones(account, systems, engine_for):
    systems.add_accounts(account(1), account(2, email="bob@@example.com"),
                         account(3, kind="X"), account(4, country="Deutschland"))
    engine = engine_for(systems)
    result = engine.run("accounts")
    assert result.counts["read"] == 4
    assert result.counts["created"] == 2
    assert result.counts["failed"] == 2
    assert result.status == "partial"
    rows = systems.erp_rows()
    assert [r["crm_ref"] for r in rows] == sorted(
        engine.store.canonical_ids("Account", "crm", ["A001", "A004"]).values())
    assert {r["name"] for r in rows} == {"Company 1", "Company 4"}
    assert {r["country"] for r in rows} == {"DE"}
    letters = {d.source_key: d for d in engine.store.dead_letters(flow="accounts")}
    assert set(letters) == {"A002", "A003"}
    assert "bob@@example.com" in letters["A002"].error
    assert "X" in letters["A003"].error and letters["A003"].payload["kind"] == "X"


def test_second_run_changes_nothing(account, systems, engine_for):
    systems.add_accounts(*(account(n) for n in range(1, 8)))
    engine = engine_for(systems)
    first = engine.run("accounts")
    before = systems.erp_rows()
    second = engine.run("accounts")
    assert first.counts["created"] == 7
    assert second.changed == 0
    assert systems.erp_rows() == before


def test_incremental_run_updates_exactly_the_edited_records(account, systems, engine_for):
    systems.add_accounts(*(account(n, at=T0 - dt.timedelta(hours=n)) for n in range(1, 11)))
    engine = engine_for(systems)
    engine.run("accounts")
    with systems.crm.begin() as conn:
        conn.execute(systems.accounts.update()
                     .where(systems.accounts.c.id.in_(["A003", "A007"]))
                     .values(name="Renamed", updated_at=T0 + dt.timedelta(hours=1)))
    result = engine.run("accounts")
    assert result.counts["updated"] == 2 and result.counts["created"] == 0
    assert result.counts["read"] == 3 and result.counts["unchanged"] == 1  # lookback re-read
    assert sorted(r["name"] for r in systems.erp_rows() if r["name"] == "Renamed") == \
        ["Renamed", "Renamed"]


def test_equal_timestamps_across_batches_are_never_skipped(account, systems, engine_for):
    # batch_size is 3: ten rows with one timestamp span four batches
    systems.add_accounts(*(account(n, at=T0) for n in range(1, 11)))
    engine = engine_for(systems)
    engine.run("accounts")
    systems.add_accounts(*(account(n, at=T0) for n in range(11, 14)))  # same instant, later
    result = engine.run("accounts")
    assert result.counts["created"] == 3
    assert len(systems.erp_rows()) == 13


def test_child_without_parent_is_parked_then_loaded(account, systems, engine_for):
    systems.add_accounts(account(1))
    systems.add_contacts({"id": "P1", "account_id": "A001", "last_name": "Ok", "updated_at": T0},
                         {"id": "P2", "account_id": "A002", "last_name": "Early",
                          "updated_at": T0})
    engine = engine_for(systems)
    results = engine.run_all()
    assert [r.flow for r in results] == ["accounts", "contacts"]
    assert results[1].counts["created"] == 1 and results[1].counts["parked"] == 1
    assert [d.source_key for d in engine.store.dead_letters("contacts", "parked")] == ["P2"]
    systems.add_accounts(account(2, at=T0 + dt.timedelta(minutes=5)))
    results = engine.run_all()
    assert results[1].counts["created"] == 1
    assert engine.store.dead_letters("contacts", ("open", "parked")) == []
    people = systems.erp_rows("people")
    customers = {c["crm_ref"]: c["id"] for c in systems.erp_rows()}
    assert {p["customer_id"] for p in people} == set(customers.values())


def test_dry_run_writes_nothing_and_lists_changes(account, systems, engine_for):
    systems.add_accounts(account(1), account(2))
    engine = engine_for(systems)
    result = engine.run("accounts", dry_run=True)
    assert [c.action for c in result.changes] == ["create", "create"]
    assert result.changes[0].fields["name"] == "Company 1"
    assert systems.erp_rows() == []
    assert engine.store.get_watermark("accounts", "accounts") is None
    assert engine.run("accounts").counts["created"] == 2


def test_dry_run_shows_field_level_updates(account, systems, engine_for):
    systems.add_accounts(account(1))
    engine = engine_for(systems)
    engine.run("accounts")
    with systems.crm.begin() as conn:
        conn.execute(systems.accounts.update().values(email="new@company1.example",
                                                      updated_at=T0 + dt.timedelta(hours=1)))
    result = engine.run("accounts", dry_run=True)
    assert [(c.action, c.fields) for c in result.changes] == [
        ("update", {"email": "new@company1.example"})]


def test_watermark_only_moves_after_a_committed_batch(account, systems, engine_for, monkeypatch):
    systems.add_accounts(*(account(n, at=T0 + dt.timedelta(minutes=n)) for n in range(1, 10)))
    engine = engine_for(systems)
    target = engine.pool.get("erp")
    real_upsert, calls = target.upsert, []

    def failing_upsert(stream, rows):
        calls.append(len(rows))
        if len(calls) == 2:
            raise FatalError("ERP went away")
        return real_upsert(stream, rows)

    monkeypatch.setattr(target, "upsert", failing_upsert)
    with pytest.raises(FatalError):
        engine.run("accounts")
    mark = engine.store.get_watermark("accounts", "accounts")
    assert dt.datetime.fromisoformat(mark.value).replace(tzinfo=None) == \
        T0 + dt.timedelta(minutes=3)
    assert len(systems.erp_rows()) == 3
    monkeypatch.setattr(target, "upsert", real_upsert)
    result = engine.run("accounts")
    assert result.counts["created"] == 6
    assert len(systems.erp_rows()) == 9
    assert engine.store.list_runs("accounts", limit=2)[1].status == "failed"


def test_full_refresh_and_since_read_again(account, systems, engine_for):
    systems.add_accounts(*(account(n, at=T0 + dt.timedelta(days=n)) for n in range(1, 6)))
    engine = engine_for(systems)
    engine.run("accounts")
    assert engine.run("accounts").counts["read"] == 1        # the lookback re-reads the last
    assert engine.run("accounts", mode="full_refresh").counts["read"] == 5
    from crm2erp.engine import parse_since
    result = engine.run("accounts", mode="since", since=parse_since("2026-03-04"))
    assert result.counts["read"] == 3 and result.changed == 0
    mark = engine.store.get_watermark("accounts", "accounts")
    assert mark.value.startswith("2026-03-06")   # a backfill never moves the watermark back


def test_full_refresh_of_unchanged_data_leaves_the_hub_memory_alone(account, systems,
                                                                     engine_for):
    from crm2erp.store.fieldmemory import decode
    from crm2erp.store.tables import canonical_records

    systems.add_accounts(*(account(n) for n in range(1, 5)))
    engine = engine_for(systems)
    engine.run("accounts")

    def memory():
        with engine.store.engine.connect() as conn:
            return {r.canonical_id: bytes(r.memory)
                    for r in conn.execute(sa.select(canonical_records))}

    written: list[str] = []   # the statements that write the hub memory (no run ids kept)

    def record_write(conn, cursor, statement, *rest):
        if "canonical_records" in statement and not statement.lstrip().upper().startswith(
                "SELECT"):
            written.append(statement)

    sa.event.listen(engine.store.engine, "before_cursor_execute", record_write)
    before = memory()
    assert len(before) == 4
    again = engine.run("accounts", mode="full_refresh")
    assert again.counts["read"] == 4 and again.changed == 0
    assert memory() == before and written == []       # not one canonical row rewritten
    with systems.crm.begin() as conn:
        conn.execute(systems.accounts.update().where(systems.accounts.c.id == "A002")
                     .values(name="Renamed"))
    third = engine.run("accounts", mode="full_refresh")
    sa.event.remove(engine.store.engine, "before_cursor_execute", record_write)
    assert third.counts["updated"] == 1 and len(written) == 1
    after = memory()
    [changed] = [cid for cid in after if after[cid] != before[cid]]
    assert engine.store.canonical_ids("Account", "crm", ["A002"]) == {"A002": changed}
    assert decode(after[changed])[0]["name"] == "Renamed"


def test_full_refresh_of_unchanged_data_writes_only_the_run_and_the_watermark(
        account, systems, engine_for):
    """An unchanged source row is recognised by its stored hash before it is mapped:
    the state store gets no xref, canonical or dead-letter write, the ERP no write."""
    systems.add_accounts(*(account(n) for n in range(1, 8)), account(8, kind="X"))
    engine = engine_for(systems)
    assert engine.run("accounts").counts["created"] == 7
    rows_before = systems.erp_rows()
    written: list[str] = []

    def record_write(conn, cursor, statement, *rest):
        if statement.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            written.append(statement)

    sa.event.listen(engine.store.engine, "before_cursor_execute", record_write)
    again = engine.run("accounts", mode="full_refresh")
    sa.event.remove(engine.store.engine, "before_cursor_execute", record_write)
    assert again.counts["read"] == 8 and again.counts["unchanged"] == 7
    assert again.counts["failed"] == 1 and again.changed == 0   # the bad row: tried again
    tables = {re.search(r"(?:INTO|UPDATE|FROM)\s+(\w+)", w).group(1) for w in written}
    assert tables <= {"runs", "watermarks", "locks", "dead_letters"}, tables
    assert not [w for w in written if "dead_letters" in w and "INSERT" in w]
    assert systems.erp_rows() == rows_before


def test_full_refresh_after_a_mapping_change_maps_every_record_again(account, systems,
                                                                     engine_for):
    systems.add_accounts(*(account(n) for n in range(1, 4)))
    engine_for(systems).run("accounts")
    out = systems.project / "customer.out.map.yaml"
    out.write_text(out.read_text().replace("name: {from: name}",
                                           "name: {from: name, transforms: [upper]}"))
    again = engine_for(systems).run("accounts", mode="full_refresh")
    assert again.counts["updated"] == 3
    assert {r["name"] for r in systems.erp_rows()} == {"COMPANY 1", "COMPANY 2", "COMPANY 3"}


def test_a_row_deleted_and_restored_unchanged_is_written_again(account, systems, engine_for):
    """A delete forgets the source row's hash: the very same row restored in the source
    is created again by a --full-refresh, not skipped as already synced."""
    with systems.crm.begin() as conn:
        conn.execute(sa.text("ALTER TABLE accounts ADD COLUMN is_deleted BOOLEAN "
                             "NOT NULL DEFAULT 0"))
    connections = systems.project / "connections.yaml"
    connections.write_text(connections.read_text().replace(
        "accounts: {table: accounts, key: id, cursor: updated_at}",
        "accounts: {table: accounts, key: id, cursor: updated_at, "
        "soft_delete_column: is_deleted}"))
    flow = systems.project / "accounts.flow.yaml"
    flow.write_text(flow.read_text() + "delete_policy: delete\n")
    systems.add_accounts(account(1), account(2))
    engine = engine_for(systems)
    assert engine.run("accounts").counts["created"] == 2

    def flag(deleted: bool) -> None:
        with systems.crm.begin() as conn:
            conn.execute(sa.text("UPDATE accounts SET is_deleted = :d WHERE id = 'A002'"),
                         {"d": deleted})

    flag(True)
    assert engine.run("accounts", mode="full_refresh").counts["deleted"] == 1
    assert [r["name"] for r in systems.erp_rows()] == ["Company 1"]
    flag(False)                                    # restored, the row as it was
    again = engine.run("accounts", mode="full_refresh")
    assert again.counts["unchanged"] == 1 and again.counts["created"] == 1
    assert sorted(r["name"] for r in systems.erp_rows()) == ["Company 1", "Company 2"]


def test_dead_letter_replayed_after_the_mapping_is_fixed(account, systems, engine_for, tmp_path):
    systems.add_accounts(account(1), account(2, kind="R"))
    engine = engine_for(systems)
    engine.run("accounts")
    [letter] = engine.store.dead_letters("accounts")
    fixed = (systems.project / "account.in.map.yaml").read_text().replace(
        "{C: customer, P: prospect}", "{C: customer, P: prospect, R: partner}")
    (systems.project / "account.in.map.yaml").write_text(fixed)
    engine = engine_for(systems)
    [result] = engine.retry([letter])
    assert result.counts["created"] == 1
    assert engine.store.get_dead_letter(letter.id).status == "resolved"
    assert {r["kind"] for r in systems.erp_rows()} == {"customer", "partner"}


def test_one_run_per_flow_at_a_time(account, systems, engine_for):
    systems.add_accounts(account(1))
    engine = engine_for(systems)
    with engine.store.lock("accounts", owner="someone else"):
        with pytest.raises(LockHeldError, match="someone else"):
            engine.run("accounts")
    assert engine.run("accounts").counts["created"] == 1


def test_target_refusal_is_a_dead_letter_and_the_batch_goes_on(account, systems, engine_for):
    with systems.erp.begin() as conn:
        conn.execute(sa.text("CREATE UNIQUE INDEX customers_email ON customers (email)"))
    systems.add_accounts(account(1, email="same@x.example"), account(2),
                         account(3, email="same@x.example"))
    engine = engine_for(systems)
    result = engine.run("accounts")
    assert result.counts["created"] == 2 and result.counts["failed"] == 1
    [letter] = engine.store.dead_letters("accounts")
    assert letter.stage == "write" and letter.source_key == "A003"


def test_partitions_split_the_work_without_loss_or_overlap(account, systems, engine_for):
    flow = (systems.project / "accounts.flow.yaml").read_text() + "partitions: {count: 3}\n"
    (systems.project / "accounts.flow.yaml").write_text(flow)
    systems.add_accounts(*(account(n, at=T0 + dt.timedelta(minutes=n)) for n in range(1, 31)))
    engine = engine_for(systems)
    results = [engine.run("accounts", partition=p) for p in range(3)]
    assert sum(r.counts["created"] for r in results) == 30
    assert all(r.counts["created"] > 0 for r in results)   # every slice got work
    assert len({r["crm_ref"] for r in systems.erp_rows()}) == 30
    assert [engine.run("accounts", partition=p).changed for p in range(3)] == [0, 0, 0]
    assert engine.store.get_watermark("accounts", "accounts#p2of3") is not None
    with pytest.raises(Exception, match="no partition 3"):
        engine.run("accounts", partition=3)


def test_write_back_puts_the_target_id_on_the_source_record(account, systems, engine_for):
    with systems.crm.begin() as conn:
        conn.execute(sa.text("ALTER TABLE accounts ADD COLUMN erp_no VARCHAR(20)"))
    flow = (systems.project / "accounts.flow.yaml").read_text()
    (systems.project / "accounts.flow.yaml").write_text(
        flow + "write_back: {connection: crm, stream: accounts, field: erp_no}\n")
    systems.add_accounts(account(1), account(2, email="bad@@x"), account(3))
    engine = engine_for(systems)
    result = engine.run("accounts")
    assert result.counts["written_back"] == 2
    with systems.crm.connect() as conn:
        back = dict(conn.execute(sa.text("SELECT id, erp_no FROM accounts")).all())
    ids = {r["name"]: str(r["id"]) for r in systems.erp_rows()}
    assert back == {"A001": ids["Company 1"], "A002": None, "A003": ids["Company 3"]}
    again = engine.run("accounts", mode="full_refresh")
    assert again.counts["written_back"] == 0 and again.changed == 0

"""The acceptance checks of the walking skeleton on PostgreSQL and MariaDB:
CRM, ERP and the state store on the real servers."""

from __future__ import annotations


def test_two_runs_give_identical_rows_and_bad_records_dead_lettered(
        account, server_systems, engine_for):
    s = server_systems
    s.add_accounts(*(account(n) for n in range(1, 21)),
                   account(21, email="broken@@mail"), account(22, kind="Z"))
    s.add_contacts(*({"id": f"P{n}", "account_id": f"A{n:03d}", "last_name": f"Person {n}",
                      "updated_at": account(n)["updated_at"]} for n in range(1, 23)))
    engine = engine_for(s)
    first = engine.run_all()
    customers, people = s.erp_rows(), s.erp_rows("people")
    second = engine.run_all()

    assert [r.counts["created"] for r in first] == [20, 20]
    assert first[1].counts["parked"] == 2          # their accounts were dead-lettered
    assert sum(r.changed for r in second) == 0
    assert s.erp_rows() == customers and s.erp_rows("people") == people
    assert len({c["crm_ref"] for c in customers}) == len(customers) == 20
    letters = {d.source_key: d.error for d in engine.store.dead_letters("accounts")}
    assert set(letters) == {"A021", "A022"}
    assert "broken@@mail" in letters["A021"]
    assert "'Z'" in letters["A022"] or "Z" in letters["A022"]
    assert {p["customer_id"] for p in people} <= {c["id"] for c in customers}



def test_delete_policy_deletes_or_blocks_what_the_erp_must_keep(
        account, pg_url, tmp_path, monkeypatch, engine_for, project_writer):
    import datetime as dt

    import sqlalchemy as sa

    db = sa.create_engine(pg_url)
    with db.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE accounts (id VARCHAR(20) PRIMARY KEY, name VARCHAR(100), "
            "kind VARCHAR(10), email VARCHAR(100), country VARCHAR(40), "
            "is_deleted BOOLEAN NOT NULL DEFAULT false, updated_at TIMESTAMP NOT NULL)"))
        conn.execute(sa.text(
            "CREATE TABLE customers (id SERIAL PRIMARY KEY, crm_ref VARCHAR(64) UNIQUE NOT NULL,"
            " name VARCHAR(100) NOT NULL, kind VARCHAR(20), email VARCHAR(100), "
            "country VARCHAR(2), active BOOLEAN NOT NULL DEFAULT true)"))
        conn.execute(sa.text(
            "CREATE TABLE invoices (id SERIAL PRIMARY KEY, "
            "customer_id INTEGER NOT NULL REFERENCES customers(id))"))
        conn.execute(sa.text(
            "INSERT INTO accounts (id, name, kind, email, country, updated_at) VALUES "
            "('A1', 'One', 'C', 'a@one.example', 'DE', now()), "
            "('A2', 'Two', 'C', 'b@two.example', 'DE', now()), "
            "('A3', 'Three', 'C', 'c@three.example', 'DE', now())"))
    monkeypatch.setenv("DB", pg_url)
    project = project_writer(tmp_path / "project", **{
        "connections.yaml": (
            "connections:\n"
            "  crm: {type: sql, url: '${DB}', streams: {accounts: {table: accounts, key: id, "
            "cursor: updated_at, soft_delete_column: is_deleted}}}\n"
            "  erp: {type: sql, url: '${DB}', streams: {customers: {table: customers, "
            "key: crm_ref, id_column: id, archive: {column: active, value: false}}}}\n"),
        "accounts.flow.yaml": (
            "flow: accounts\nentity: Account\n"
            "source: {connection: crm, stream: accounts, mapping: account.in.map.yaml}\n"
            "target: {connection: erp, stream: customers, mapping: customer.out.map.yaml}\n"
            "incremental: {cursor: updated_at, lookback: 1m}\ndelete_policy: delete\n"),
        "contacts.flow.yaml": None})
    state = type("S", (), {"state_url": pg_url, "project": project})
    engine = engine_for(state)
    assert engine.run("accounts").counts["created"] == 3
    with db.begin() as conn:       # A2 has a posted invoice; then A1 and A2 are deleted
        conn.execute(sa.text("INSERT INTO invoices (customer_id) "
                             "SELECT id FROM customers WHERE name = 'Two'"))
        conn.execute(sa.text("UPDATE accounts SET is_deleted = true, updated_at = :t "
                             "WHERE id IN ('A1', 'A2')"),
                     {"t": dt.datetime.now() + dt.timedelta(seconds=5)})
    result = engine.run("accounts")
    assert result.counts["deleted"] == 2
    with db.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT name, active FROM customers")).all())
    assert rows == {"Two": False, "Three": True}   # deleted; blocked (has invoices); kept
    db.dispose()


def _state_rows(store) -> dict[str, list[tuple]]:
    """Every row of the state tables a re-sync must not touch, with its updated_at
    and run_id (the run log, watermarks and locks are the run's own)."""
    import sqlalchemy as sa

    from crm2erp.store.tables import metadata

    kept = sorted(set(metadata.tables) - {"runs", "watermarks", "locks"})
    with store.engine.connect() as conn:
        return {name: sorted(tuple(row) for row in conn.execute(
            sa.select(metadata.tables[name]))) for name in kept}


def _resync_of_unchanged_data_writes_nothing(s, engine_for, account) -> None:
    import sqlalchemy as sa

    from crm2erp.store.tables import watermarks

    s.add_accounts(*(account(n) for n in range(1, 13)))
    engine = engine_for(s)
    first = engine.run("accounts")
    assert first.counts["created"] == 12
    before, customers = _state_rows(engine.store), s.erp_rows()
    assert len(before["xref"]) == 24 and len(before["canonical_records"]) == 12
    for mode in ("incremental", "full_refresh"):
        again = engine.run("accounts", mode=mode)
        assert again.changed == 0 and again.counts["failed"] == 0, (mode, again.counts)
        assert _state_rows(engine.store) == before, mode     # not one row rewritten
        assert engine.store.get_run(again.run_id).status == "succeeded"
    with engine.store.engine.connect() as conn:
        marks = conn.execute(sa.select(watermarks.c.run_id)).scalars().all()
    assert marks == [again.run_id]                           # the watermark: the run's
    assert again.counts["read"] == again.counts["unchanged"] == 12
    assert s.erp_rows() == customers


def test_a_resync_of_unchanged_data_writes_only_the_run_and_the_watermark(
        account, server_systems, engine_for):
    """Incremental and --full-refresh, on PostgreSQL and MariaDB."""
    _resync_of_unchanged_data_writes_nothing(server_systems, engine_for, account)


def test_a_resync_of_unchanged_data_writes_only_the_run_and_the_watermark_sqlite(
        account, systems, engine_for):
    _resync_of_unchanged_data_writes_nothing(systems, engine_for, account)

"""The batch's xref look-ups use the primary key (a unique index) on PostgreSQL whatever
autovacuum does: here it is off on the state tables while a first sync's worth of xref rows
goes in (without statistics the planner walks the canonical-id index: every xref
row of the entity, per batch), and the plans of the look-ups the engine sends per
batch are read with EXPLAIN (not timed). The store ANALYZEs the tables itself as
they grow (StateStore._analyze_grown)."""

from __future__ import annotations

import sqlalchemy as sa

from crm2erp.store import BatchCommit, StateStore, XrefUpsert
from crm2erp.store.tables import xref
from crm2erp.store.types import canonical_id_bytes

STATE_TABLES = ("xref", "canonical_records", "dead_letters", "watermarks", "runs")


def _bytea(canonical_id: str) -> sa.ColumnElement:
    """A canonical id as the literal of its stored bytes (a bound one has no literal)."""
    return sa.literal_column(f"'\\x{canonical_id_bytes(canonical_id).hex()}'::bytea")


def _plan(conn: sa.Connection, query: sa.Select) -> str:
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return "\n".join(conn.exec_driver_sql(f"EXPLAIN {compiled}").scalars())


def test_xref_lookups_use_the_unique_index_without_statistics(pg_store_url):
    store = StateStore.open(pg_store_url)
    try:
        with store.engine.begin() as conn:
            for table in STATE_TABLES:
                conn.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        run_id = store.start_run("accounts", "incremental")
        for batch in range(20):       # 20 batches of 1,000: a first sync of 20k records
            store.commit_batch(BatchCommit(
                run_id=run_id, flow="accounts", dead_letters=[], resolved_keys=[],
                watermark=None, counts={}, xref=[
                    XrefUpsert("Account", "crm", f"A{n:06d}", f"c-{n:06d}", f"h{n}")
                    for n in range(batch * 1000, batch * 1000 + 1000)]))
        with store.engine.connect() as conn:
            analysed = conn.exec_driver_sql(
                "SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables "
                "WHERE relname = 'xref'").one()
            assert analysed[0] is not None and analysed[1] is None   # the store's own
            # a batch of 100 (0.5% of the table; at 500 of 20k, one sequential scan
            # per batch is cheaper, and the planner knows it from the statistics)
            wanted = [f"A{n:06d}" for n in range(5000, 5100)]
            numbers = store.names.known("Account"), store.names.known("crm")
            by_key = _plan(conn, store._xref_query(*numbers)
                           .where(xref.c.external_id.in_(wanted)))
            by_canonical = _plan(conn, store._xref_query(*numbers).where(
                xref.c.canonical_id.in_([_bytea(f"c-{n}") for n in wanted])))
        assert "Seq Scan" not in by_key and "pk_xref" in by_key, by_key
        # the hash index (migration 0014): a bitmap scan takes the IN list's ids
        assert "Seq Scan" not in by_canonical and "ix_xref_canonical_id" in by_canonical, \
            by_canonical
        # and the look-up finds what was written
        found = store.xref_entries("Account", "crm", ["A005000", "A019999", "nope"])
        assert {k: e.canonical_id for k, e in found.items()} == {
            "A005000": "c-005000", "A019999": "c-019999"}
    finally:
        store.close()


def test_sqlite_looks_canonical_ids_up_in_their_index(sqlite_store_url):
    """Without statistics SQLite walks the primary key's (entity, system) range of
    xref, every row of the system, for each batch's canonical ids: the store ANALYZEs
    the tables as they grow (_analyze_grown), and the plan of the statement the
    look-up sends uses the canonical-id index."""
    store = StateStore.open(sqlite_store_url)
    sent: list[tuple[str, tuple]] = []

    def keep(_conn, _cursor, statement, parameters, _context, _many):
        if "canonical_id IN" in statement:
            sent.append((statement, parameters))

    try:
        run_id = store.start_run("accounts", "incremental")
        store.commit_batch(BatchCommit(run_id=run_id, flow="accounts", xref=[
            XrefUpsert("Account", system, f"{system}{n}", f"c-{n:06d}")
            for n in range(20_000) for system in ("crm", "erp")]))
        sa.event.listen(store.engine, "before_cursor_execute", keep)
        wanted = [f"c-{n:06d}" for n in range(1000, 1500)]   # a batch's worth
        found = store.external_ids("Account", "erp", wanted + ["nope"])
        assert found == {f"c-{n:06d}": f"erp{n}" for n in range(1000, 1500)}
        [(statement, parameters)] = sent
        with store.engine.connect() as conn:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        assert any("USING INDEX ix_xref_canonical_id" in row[-1]
                   for row in plan), plan
    finally:
        store.close()

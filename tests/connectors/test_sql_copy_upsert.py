"""PostgreSQL batches go through COPY into a temporary table and one INSERT ...
ON CONFLICT; the rows read back through PostgreSQL equal what was sent, with the
hostile values (tabs, newlines, backslashes, quotes, NUL-free unicode, \\N) intact."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from crm2erp.connectors import create_connector
from crm2erp.connectors.base import WriteAction

HOSTILE = ["tab\there", "new\nline", "back\\slash", "\\N", "quote ' \" ", "<b>bold</b>",
           "Müller ß 漢字 🚀", "", " lead and trail ", "comma, semicolon; pipe|"]


def _customers_target(pg_url: str):
    """The SQL target of the ``customers`` table, and the list of the statements it
    sends through SQLAlchemy (filled as it runs)."""
    statements: list[str] = []
    target = create_connector("sql", {"url": pg_url, "streams": {
        "customers": {"table": "customers", "key": "crm_ref", "id_column": "id"}}})
    sa.event.listen(target.engine, "before_cursor_execute",
                    lambda *args: statements.append(args[2]))
    return target, statements


def test_copy_upsert_creates_updates_and_keeps_every_value(pg_url):
    md = sa.MetaData()
    table = sa.Table("customers", md,
                     sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                     sa.Column("crm_ref", sa.String(40), nullable=False, unique=True),
                     sa.Column("name", sa.Text, nullable=False),
                     sa.Column("revenue", sa.Numeric(14, 2)),
                     sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
                     sa.Column("seen_at", sa.DateTime(timezone=True)))
    engine = sa.create_engine(pg_url)
    md.create_all(engine)
    target, statements = _customers_target(pg_url)
    moment = dt.datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=dt.UTC)
    rows = [{"crm_ref": f"C-{i}", "name": HOSTILE[i % len(HOSTILE)] + str(i),
             "revenue": Decimal(i) / 4 if i % 3 else None, "seen_at": moment}
            for i in range(300)]
    try:
        first = target.upsert("customers", rows)
        assert {r.action for r in first} == {WriteAction.CREATED}
        assert any(s.startswith("CREATE TEMPORARY TABLE") for s in statements)
        assert any("ON CONFLICT" in s and "SELECT" in s for s in statements)
        changed = [dict(r, name=r["name"] + " v2") for r in rows[:150]] + rows[150:]
        second = target.upsert("customers", changed)
        assert [r.action for r in second] == ([WriteAction.UPDATED] * 150
                                              + [WriteAction.UNCHANGED] * 150)
        assert [r.target_id for r in second] == [r.target_id for r in first]
    finally:
        target.close()
    with engine.connect() as conn:
        held = {r.crm_ref: r for r in conn.execute(sa.select(table))}
    engine.dispose()
    assert len(held) == 300
    for row in changed:
        back = held[row["crm_ref"]]
        assert (back.name, back.revenue, back.active, back.seen_at) == (
            row["name"], None if row["revenue"] is None else row["revenue"].quantize(
                Decimal("0.01")), True, moment)


def test_key_look_ups_are_planned_on_each_run_not_kept_from_an_empty_table(pg_url):
    """psycopg would keep a statement run five times as a prepared statement, and
    PostgreSQL its generic plan from when the table was empty (a sequential scan,
    never re-planned without an ANALYZE): a first sync got slower with every batch.
    The connector's sessions prepare nothing, so each look-up is planned against the
    table as it is; the rows written are all there."""
    md = sa.MetaData()
    sa.Table("customers", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("crm_ref", sa.String(40), nullable=False, unique=True),
             sa.Column("name", sa.Text, nullable=False))
    engine = sa.create_engine(pg_url)
    md.create_all(engine)
    target = create_connector("sql", {"url": pg_url, "streams": {
        "customers": {"table": "customers", "key": "crm_ref", "id_column": "id"}}})
    try:
        for batch in range(12):   # the same look-up statement, twelve times
            rows = [{"crm_ref": f"C-{batch}-{i}", "name": f"N {i}"} for i in range(50)]
            assert {r.action for r in target.upsert("customers", rows)} == {
                WriteAction.CREATED}
        with target.engine.connect() as conn:
            prepared = conn.exec_driver_sql(
                "SELECT statement FROM pg_prepared_statements").scalars().all()
    finally:
        target.close()
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(DISTINCT crm_ref) FROM customers")).scalar()
    engine.dispose()
    assert prepared == []
    assert count == 600


def test_batches_reuse_the_compiled_statements_and_two_shapes_stage_in_one_batch(pg_url):
    """The stage has one name, so a batch compiles nothing new: SQLAlchemy's statement
    cache holds as many entries after twelve batches as after two (a name per batch
    kept a compiled statement and its columns per batch: ~8 MB at 200k records).
    Two column shapes in one batch are staged one after the other; every row is read
    back."""
    md = sa.MetaData()
    table = sa.Table("customers", md,
                     sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                     sa.Column("crm_ref", sa.String(40), nullable=False, unique=True),
                     sa.Column("name", sa.Text, nullable=False),
                     sa.Column("city", sa.Text))
    engine = sa.create_engine(pg_url)
    md.create_all(engine)
    target = create_connector("sql", {"url": pg_url, "streams": {
        "customers": {"table": "customers", "key": "crm_ref", "id_column": "id"}}})
    cached = []
    try:
        for batch in range(12):
            rows = [{"crm_ref": f"C-{batch}-{i}", "name": f"N {i}"} for i in range(20)]
            rows += [{"crm_ref": f"D-{batch}-{i}", "name": f"M {i}", "city": f"City {i}"}
                     for i in range(20)]
            assert {r.action for r in target.upsert("customers", rows)} == {
                WriteAction.CREATED}
            cached.append(len(target.engine._compiled_cache))
    finally:
        target.close()
    with engine.connect() as conn:
        held = {r.crm_ref: (r.name, r.city) for r in conn.execute(sa.select(table))}
    engine.dispose()
    assert cached[-1] == cached[1]
    assert len(held) == 480
    assert held["C-11-19"] == ("N 19", None) and held["D-11-19"] == ("M 19", "City 19")


def test_a_key_longer_than_its_column_is_looked_up_whole_never_cut(pg_url):
    """The key look-ups bind one array; a text array cast to varchar(n)[] would cut a
    longer key to n characters and find the row of that prefix. The longer key is
    refused by the database, and the row of the prefix keeps its value."""
    md = sa.MetaData()
    table = sa.Table("customers", md,
                     sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                     sa.Column("crm_ref", sa.String(5), nullable=False, unique=True),
                     sa.Column("name", sa.Text, nullable=False))
    engine = sa.create_engine(pg_url)
    md.create_all(engine)
    target, statements = _customers_target(pg_url)
    try:
        assert [r.action for r in target.upsert("customers", [
            {"crm_ref": "ABCDE", "name": "kept"}])] == [WriteAction.CREATED]
        results = target.upsert("customers", [{"crm_ref": "ABCDEF", "name": "other"},
                                              {"crm_ref": "XY", "name": "new"}])
        assert target.lookup("customers", ["ABCDEF"]) == {}
    finally:
        target.close()
    with engine.connect() as conn:
        held = dict(conn.execute(sa.select(table.c.crm_ref, table.c.name)).all())
    engine.dispose()
    assert any("= ANY" in s and "VARCHAR[]" in s for s in statements)
    assert [r.action for r in results] == [WriteAction.FAILED, WriteAction.CREATED]
    assert held == {"ABCDE": "kept", "XY": "new"}

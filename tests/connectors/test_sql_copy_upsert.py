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
    statements: list[str] = []
    target = create_connector("sql", {"url": pg_url, "streams": {
        "customers": {"table": "customers", "key": "crm_ref", "id_column": "id"}}})
    sa.event.listen(target.engine, "before_cursor_execute",
                    lambda *args: statements.append(args[2]))
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

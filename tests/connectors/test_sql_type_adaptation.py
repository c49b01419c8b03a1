"""Values of every python type a mapping produces, written by the SQL target into
real columns of every kind on SQLite, PostgreSQL and MariaDB, and read back through
the database itself: the stored type and value are the ones the column should hold.

A Decimal into a SQLite TEXT column used to fail the whole row ("type
'decimal.Decimal' is not supported"); a value a column cannot hold is refused for
its row alone, naming the column.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm2erp.connectors import create_connector
from crm2erp.connectors.base import WriteAction

UTC = dt.UTC
AWARE = dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def _table(url: str) -> sa.Table:
    md = sa.MetaData()
    table = sa.Table(
        "typed", md,
        sa.Column("ref", sa.String(40), primary_key=True),
        sa.Column("text", sa.Text), sa.Column("varchar", sa.String(80)),
        sa.Column("amount", sa.Numeric(12, 2)), sa.Column("count", sa.Integer),
        sa.Column("ratio", sa.Float), sa.Column("flag", sa.Boolean),
        sa.Column("moment", sa.DateTime), sa.Column("moment_tz", sa.DateTime(timezone=True)),
        sa.Column("day", sa.Date))
    engine = sa.create_engine(url)
    md.create_all(engine)
    engine.dispose()
    return table


def _read_back(url: str, table: sa.Table) -> dict[str, dict]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = {row.ref: row._asdict() for row in conn.execute(sa.select(table))}
    engine.dispose()
    return rows


# (ref, values written, values the database holds afterwards)
CASES = [
    ("decimals",
     {"text": Decimal("1234.50"), "varchar": Decimal("-0.001"), "amount": Decimal("99.95"),
      "count": Decimal("7"), "ratio": Decimal("0.25"), "flag": Decimal("1")},
     {"text": "1234.50", "varchar": "-0.001", "amount": Decimal("99.95"), "count": 7,
      "ratio": 0.25, "flag": True}),
    ("timestamps",
     {"text": AWARE, "varchar": dt.date(2026, 3, 4), "moment": AWARE, "moment_tz": AWARE,
      "day": AWARE},
     {"text": "2026-01-02T03:04:05.123456+02:00", "varchar": "2026-03-04",
      "moment": dt.datetime(2026, 1, 2, 1, 4, 5, 123456),   # UTC, the connector's zone
      "moment_tz": AWARE, "day": dt.date(2026, 1, 2)}),
    ("booleans",
     {"text": True, "varchar": False, "flag": False, "count": True, "amount": 3},
     {"text": "true", "varchar": "false", "flag": False, "count": 1,
      "amount": Decimal("3.00")}),
    ("texts",
     {"text": "x", "amount": " 12.5 ", "count": "42", "ratio": "1.5", "flag": "yes",
      "moment": "2026-05-06T07:08:09+00:00", "day": "2026-05-06"},
     {"text": "x", "amount": Decimal("12.50"), "count": 42, "ratio": 1.5, "flag": True,
      "moment": dt.datetime(2026, 5, 6, 7, 8, 9), "day": dt.date(2026, 5, 6)}),
]


def _same(column: str, held, expected) -> bool:
    if isinstance(expected, bool) and type(held) is int:   # MariaDB: BOOLEAN is TINYINT(1)
        return held == int(expected) and "flag" == column
    if column == "moment_tz" and isinstance(held, dt.datetime):
        # PostgreSQL keeps the instant (aware); the others keep UTC wall time, naive
        return (held == expected if held.tzinfo
                else held == expected.astimezone(UTC).replace(tzinfo=None))
    return type(held) is type(expected) and held == expected


def test_every_python_type_lands_as_its_column_type(any_db_url):
    table = _table(any_db_url)
    target = create_connector("sql", {"url": any_db_url, "timezone": "UTC",
                                      "streams": {"typed": {"table": "typed", "key": "ref"}}})
    try:
        rows = [{"ref": ref, **written} for ref, written, _ in CASES]
        results = target.upsert("typed", rows)
        assert [(r.key, r.action, r.error) for r in results] == [
            (ref, WriteAction.CREATED, None) for ref, _, _ in CASES]
        held = _read_back(any_db_url, table)
        for ref, written, expected in CASES:
            for column, value in expected.items():
                if any_db_url.startswith("mysql") and isinstance(value, dt.datetime):
                    value = value.replace(microsecond=0)   # DATETIME keeps whole seconds
                assert _same(column, held[ref][column], value), (
                    ref, column, written[column], held[ref][column])
        # the same values again are recognised as what the table holds
        again = target.upsert("typed", rows)
        assert [r.action for r in again] == [WriteAction.UNCHANGED] * len(CASES)
    finally:
        target.close()


@pytest.mark.parametrize(("column", "value"), [
    ("flag", Decimal("2")), ("flag", 5), ("ratio", True), ("amount", True),
    ("count", Decimal("1.5")), ("day", 20260102), ("moment", "yesterday")])
def test_a_value_its_column_cannot_hold_fails_its_row_alone(sqlite_url, column, value):
    table = _table(sqlite_url)
    target = create_connector("sql", {"url": sqlite_url,
                                      "streams": {"typed": {"table": "typed", "key": "ref"}}})
    try:
        results = target.upsert("typed", [{"ref": "bad", column: value},
                                          {"ref": "good", "text": Decimal("1.0")}])
    finally:
        target.close()
    assert results[0].action is WriteAction.FAILED
    assert repr(column) in results[0].error and "cannot convert" in results[0].error
    assert results[1].action is WriteAction.CREATED
    assert set(_read_back(sqlite_url, table)) == {"good"}
    assert _read_back(sqlite_url, table)["good"]["text"] == "1.0"

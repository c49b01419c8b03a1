"""The tables with a row per record made smaller: binary canonical ids, integer times,
xref keyed by its natural key.

``xref`` and ``canonical_records`` hold a row (xref: one per system) for every
synced record, most of the state store's bytes. Both are built anew and their
rows copied over in batches of 1,000:

- ``canonical_id`` is stored as :class:`crm2erp.store.types.CanonicalId` makes it:
  a uuid in 16 bytes instead of 36 characters (any other id as framed UTF-8);
- ``updated_at`` on SQLite is an integer of microseconds since the epoch
  (:class:`crm2erp.store.types.UTCMicros`) instead of 26 characters of text;
  PostgreSQL and MariaDB keep their native 8-byte timestamps;
- ``xref`` loses its surrogate ``id``: (entity, system, external_id), which was
  its unique key, is its primary key, and on SQLite the table itself (WITHOUT
  ROWID): no rowid and no second copy of the key in a unique index.

The code sees the same values as before. The downgrade builds the tables of
revision 0010 again and copies the rows back (xref ids are numbered anew).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm2erp.store.migrations.columns import (
    canonical_id,
    digest,
    long_bytes,
    micros,
    table_args,
    ts,
)
from crm2erp.store.types import CanonicalId, UTCDateTime, UTCMicros, WideDigest

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BATCH = 1000
XREF_INDEX = "ix_xref_entity_system_canonical_id"
XREF_KEY = ("entity", "system", "external_id")
RECORDS_KEY = ("entity", "canonical_id")


def _xref(name: str, compact: bool) -> sa.TableClause:
    """xref's columns with the types its rows are read and written through."""
    ids, times = (CanonicalId(), UTCMicros()) if compact else (sa.String(), UTCDateTime())
    surrogate = [] if compact else [sa.column("id", sa.Integer())]
    return sa.table(name, *surrogate,
                    sa.column("entity", sa.String()), sa.column("system", sa.String()),
                    sa.column("external_id", sa.String()), sa.column("canonical_id", ids),
                    sa.column("payload_hash", WideDigest()), sa.column("updated_at", times),
                    sa.column("run_id", sa.Integer()))


def _records(name: str, compact: bool) -> sa.TableClause:
    ids, times = (CanonicalId(), UTCMicros()) if compact else (sa.String(), UTCDateTime())
    return sa.table(name, sa.column("entity", sa.String()), sa.column("canonical_id", ids),
                    sa.column("memory", sa.LargeBinary()), sa.column("updated_at", times),
                    sa.column("run_id", sa.Integer()))


def _after(columns: Sequence[sa.ColumnClause], values: Sequence) -> sa.ColumnElement[bool]:
    """The rows whose key (``columns``) sorts after ``values``."""
    first, *rest = columns
    if not rest:
        return first > values[0]
    return sa.or_(first > values[0], sa.and_(first == values[0], _after(rest, values[1:])))


def _copy(source: sa.TableClause, target: sa.TableClause, key: Sequence[str]) -> None:
    """Every row of ``source`` into ``target`` (the columns both have), a batch at a time
    in ``key`` order; each value goes through the types of the two tables' columns."""
    conn = op.get_bind()
    names = [column.name for column in target.columns if column.name in source.c]
    order = [source.c[name] for name in key]
    after: Sequence | None = None
    while True:
        query = sa.select(*(source.c[name] for name in {*names, *key})).order_by(*order)
        if after is not None:
            query = query.where(_after(order, after))
        rows = conn.execute(query.limit(BATCH)).all()
        if not rows:
            return
        conn.execute(target.insert(), [{name: getattr(row, name) for name in names}
                                       for row in rows])
        after = [getattr(rows[-1], name) for name in key]


def _set_aside(table: str, constraints: Sequence[tuple[str, str]]) -> str:
    """Rename ``table`` out of the way of its successor; PostgreSQL's constraint names
    are its index names, unique in the schema, so they go first. Returns the new name."""
    if op.get_bind().dialect.name == "postgresql":
        for name, kind in constraints:
            op.drop_constraint(name, table, type_=kind)
    aside = f"{table}_before_0011"
    op.rename_table(table, aside)
    return aside


def _create_xref(compact: bool) -> None:
    if compact:
        op.create_table(
            "xref",
            sa.Column("entity", sa.String(64), nullable=False),
            sa.Column("system", sa.String(64), nullable=False),
            sa.Column("external_id", sa.String(191), nullable=False),
            sa.Column("canonical_id", canonical_id(), nullable=False),
            sa.Column("payload_hash", digest(), nullable=True),
            sa.Column("updated_at", micros(), nullable=False),
            sa.Column("run_id", sa.Integer, nullable=True),
            sa.PrimaryKeyConstraint(*XREF_KEY, name="pk_xref"),
            sqlite_with_rowid=False,
            **table_args(),
        )
    else:   # as revisions 0001 and 0010 left it
        op.create_table(
            "xref",
            sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
            sa.Column("entity", sa.String(64), nullable=False),
            sa.Column("system", sa.String(64), nullable=False),
            sa.Column("external_id", sa.String(191), nullable=False),
            sa.Column("canonical_id", sa.String(191), nullable=False),
            sa.Column("updated_at", ts(), nullable=False),
            sa.Column("run_id", sa.Integer, nullable=True),
            sa.Column("payload_hash", digest(), nullable=True),
            sa.PrimaryKeyConstraint("id", name="pk_xref"),
            sa.UniqueConstraint(*XREF_KEY, name="uq_xref_entity_system_external_id"),
            **table_args(),
        )
    op.create_index(XREF_INDEX, "xref", ["entity", "system", "canonical_id"])


def _create_records(compact: bool) -> None:
    op.create_table(
        "canonical_records",
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("canonical_id", canonical_id() if compact else sa.String(191),
                  nullable=False),
        sa.Column("updated_at", micros() if compact else ts(), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("memory", long_bytes(), nullable=False),
        sa.PrimaryKeyConstraint(*RECORDS_KEY, name="pk_canonical_records"),
        sqlite_with_rowid=False,   # as revision 0009 made it
        **table_args(),
    )


def _rebuild(compact: bool) -> None:
    """Both tables in the form ``compact`` says, with their rows."""
    xref_constraints = ([("pk_xref", "primary")] if not compact else
                        [("pk_xref", "primary"), ("uq_xref_entity_system_external_id", "unique")])
    op.drop_index(XREF_INDEX, table_name="xref")
    old_xref = _set_aside("xref", xref_constraints)
    _create_xref(compact)
    _copy(_xref(old_xref, not compact), _xref("xref", compact),
          ("id",) if compact else XREF_KEY)
    op.drop_table(old_xref)

    old_records = _set_aside("canonical_records", [("pk_canonical_records", "primary")])
    _create_records(compact)
    _copy(_records(old_records, not compact), _records("canonical_records", compact),
          RECORDS_KEY)
    op.drop_table(old_records)


def upgrade() -> None:
    _rebuild(compact=True)


def downgrade() -> None:
    _rebuild(compact=False)

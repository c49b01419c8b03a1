"""The hub memory packed: a canonical record's data and field times in one compressed value.

``canonical_records`` loses its two JSON text columns ``data`` and
``field_times`` for one binary column ``memory``, in the form of
:func:`crm2erp.store.fieldmemory.encode` (the JSON ``[field_times, data]``,
deflated with a dictionary of the canonical field names): about half the bytes.
On SQLite the table becomes ``WITHOUT ROWID``, so its primary key needs no index
of its own.
The rows are converted in batches of 1,000 by key; the downgrade unpacks them
into the two text columns again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from crm2erp.jsonutil import dumps, loads
from crm2erp.store.fieldmemory import decode, encode
from crm2erp.store.migrations.columns import long_bytes, long_text

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BATCH = 1000

_records = sa.table("canonical_records", sa.column("entity"), sa.column("canonical_id"),
                    sa.column("data"), sa.column("field_times"),
                    sa.column("memory", sa.LargeBinary()))


def _convert(read: tuple[str, ...], write: Callable[[sa.Row], dict]) -> None:
    """Every row, a batch at a time by key: its ``read`` columns -> ``write``'s values."""
    conn = op.get_bind()
    key = (_records.c.entity, _records.c.canonical_id)
    after: tuple[str, str] | None = None
    while True:
        query = sa.select(*key, *(_records.c[name] for name in read)).order_by(*key)
        if after is not None:
            query = query.where(sa.tuple_(*key) > sa.tuple_(*after))
        rows = conn.execute(query.limit(BATCH)).all()
        if not rows:
            return
        conn.execute(_records.update()
                     .where(_records.c.entity == sa.bindparam("e"),
                            _records.c.canonical_id == sa.bindparam("c"))
                     .values({name: sa.bindparam(f"new_{name}") for name in write(rows[0])}),
                     [{"e": row.entity, "c": row.canonical_id,
                       **{f"new_{name}": value for name, value in write(row).items()}}
                      for row in rows])
        after = (rows[-1].entity, rows[-1].canonical_id)


def _packed(row: sa.Row) -> dict:
    return {"memory": encode(loads(row.data), loads(row.field_times))}


def _unpacked(row: sa.Row) -> dict:
    data, field_times = decode(row.memory)
    return {"data": dumps(data), "field_times": dumps(field_times)}


def upgrade() -> None:
    op.add_column("canonical_records", sa.Column("memory", long_bytes(), nullable=True))
    _convert(("data", "field_times"), _packed)
    # SQLite rebuilds the table here: WITHOUT ROWID, the primary key is the table
    with op.batch_alter_table("canonical_records",
                              table_kwargs={"sqlite_with_rowid": False}) as batch:
        batch.drop_column("data")
        batch.drop_column("field_times")
        batch.alter_column("memory", existing_type=long_bytes(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("canonical_records") as batch:
        batch.add_column(sa.Column("data", long_text(), nullable=True))
        batch.add_column(sa.Column("field_times", long_text(), nullable=True))
    _convert(("memory",), _unpacked)
    with op.batch_alter_table("canonical_records", recreate="auto",
                              table_kwargs={"sqlite_with_rowid": True}) as batch:
        batch.drop_column("memory")
        batch.alter_column("data", existing_type=long_text(), nullable=False)
        batch.alter_column("field_times", existing_type=long_text(), nullable=False)

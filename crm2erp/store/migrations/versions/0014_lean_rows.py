"""xref and canonical_records without write times and run ids; 64-bit payload hashes.

Nothing read ``updated_at`` or ``run_id`` of the two tables with a row per record but
one tie-break (of two source records merged into one canonical id, which one a look-up
by canonical id names: now the greater external id). Payload hashes keep the first 64
bits of the same sha256 (:func:`crm2erp.jsonutil.text_hash`): a stored 128-bit hash is
cut to its first 8 bytes, which is what crm2erp computes now for the same payload, so
nothing is written again after the upgrade. On PostgreSQL the look-up by canonical id
goes through a hash index packed full (fillfactor 100): 4 bytes of hash an entry instead
of the 17-byte id. At 100k records and two systems on PostgreSQL: xref 17.2 -> 13.0 MB,
its canonical-id index 7.6 -> 5.7 MB, canonical_records 25.5 -> 23.8 MB.

Both tables are built anew and their rows copied by one INSERT ... SELECT each (the
hashes cut in SQL; the rare deletion mark whose framed bytes would take the length of
a packed hash is framed again in Python). The downgrade gives every row the time of
the downgrade and no run id; its hashes keep 64 bits, as text the earlier crm2erp never
computes, so it writes each record once more and stores its 128-bit hash again.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm2erp.store.migrations.columns import canonical_id, digest, long_bytes, micros, table_args
from crm2erp.store.migrations.rebuild import set_aside
from crm2erp.store.types import (
    DIGEST_BYTES,
    WIDE_DIGEST_BYTES,
    UTCMicros,
    digest_bytes,
    digest_text,
    utcnow,
)

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

INDEX = "ix_xref_canonical_id"
XREF_KEY = ("entity_id", "system_id", "external_id")
BATCH = 1000


def _times(lean: bool) -> list[sa.Column]:
    """The columns 0014 drops, first in the row as revision 0013 made them."""
    return [] if lean else [sa.Column("updated_at", micros(), nullable=False),
                            sa.Column("run_id", sa.Integer, nullable=True)]


def _create_xref(lean: bool) -> None:
    op.create_table(
        "xref", *_times(lean),
        sa.Column("entity_id", sa.SmallInteger, nullable=False, autoincrement=False),
        sa.Column("system_id", sa.SmallInteger, nullable=False, autoincrement=False),
        sa.Column("external_id", sa.String(191), nullable=False),
        sa.Column("canonical_id", canonical_id(), nullable=False),
        sa.Column("payload_hash", digest(), nullable=True),
        sa.PrimaryKeyConstraint(*XREF_KEY, name="pk_xref"),
        sqlite_with_rowid=False,
        **table_args(),
    )
    hashed = {"postgresql_using": "hash", "postgresql_with": {"fillfactor": 100}}
    op.create_index(INDEX, "xref", ["canonical_id"], **(hashed if lean else {}))


def _create_records(lean: bool) -> None:
    op.create_table(
        "canonical_records", *_times(lean),
        sa.Column("entity_id", sa.SmallInteger, nullable=False, autoincrement=False),
        sa.Column("canonical_id", canonical_id(), nullable=False),
        sa.Column("memory", long_bytes(), nullable=False),
        sa.PrimaryKeyConstraint("entity_id", "canonical_id", name="pk_canonical_records"),
        sqlite_with_rowid=False,
        **table_args(),
    )


def _copy(old: sa.TableClause, new: str, columns: list[str],
          values: dict[str, sa.ColumnElement] | None = None) -> None:
    """Every row of ``old`` into ``new``: ``columns`` as they are, ``values`` computed."""
    values = values or {}
    names = [*columns, *values]
    target = sa.table(new, *(sa.column(c) for c in names))
    op.execute(target.insert().from_select(
        names, sa.select(*(old.c[c] for c in columns), *values.values())))


def _reframe(old: sa.TableClause, lengths: tuple[int, ...], width: int, to_width: int) -> None:
    """The payload hashes of ``old`` that are ``lengths`` bytes long, read as ``width``
    wide digests and written into the new xref as ``to_width`` wide ones, a batch at a
    time in key order."""
    conn = op.get_bind()
    new = sa.table("xref", *(sa.column(c) for c in XREF_KEY), sa.column("payload_hash"))
    key = sa.tuple_(*(old.c[c] for c in XREF_KEY))
    query = (sa.select(*(old.c[c] for c in XREF_KEY), old.c.payload_hash)
             .where(sa.func.length(old.c.payload_hash).in_(lengths))
             .order_by(*(old.c[c] for c in XREF_KEY)).limit(BATCH))
    update = new.update().where(*(new.c[c] == sa.bindparam(f"k_{c}") for c in XREF_KEY)
                                ).values(payload_hash=sa.bindparam("hashed", sa.LargeBinary()))
    after: tuple | None = None
    while True:
        rows = conn.execute(query if after is None else query.where(key > sa.tuple_(*after))
                            ).all()
        if not rows:
            return
        conn.execute(update, [
            {**{f"k_{c}": value for c, value in zip(XREF_KEY, row[:3], strict=True)},
             "hashed": digest_bytes(digest_text(row[3], width), to_width)} for row in rows])
        after = tuple(rows[-1][:3])


def _rebuild(lean: bool) -> None:
    op.drop_index(INDEX, table_name="xref")
    old = set_aside("xref", f"xref_{'before' if lean else 'after'}_0014")
    _create_xref(lean)
    hashed = old.c.payload_hash
    if lean:   # a packed 128-bit hash: its first 64 bits; an 8-byte mark: framed again
        cut = sa.case((sa.func.length(hashed) == WIDE_DIGEST_BYTES, sa.func.substr(hashed, 1, 8)),
                      (sa.func.length(hashed) == DIGEST_BYTES, sa.null()), else_=hashed)
        rewritten, width, to_width = (DIGEST_BYTES,), WIDE_DIGEST_BYTES, DIGEST_BYTES
        times: dict[str, sa.ColumnElement] = {}
    else:      # a packed hash, or a mark as long as a wide one: as text (framed)
        cut = sa.case((sa.func.length(hashed).in_((DIGEST_BYTES, WIDE_DIGEST_BYTES)),
                       sa.null()), else_=hashed)
        rewritten, width, to_width = (DIGEST_BYTES, WIDE_DIGEST_BYTES), DIGEST_BYTES, \
            WIDE_DIGEST_BYTES
        times = {"updated_at": sa.literal(utcnow(), UTCMicros()),
                 "run_id": sa.literal(None, sa.Integer())}
    _copy(old, "xref", [*XREF_KEY, "canonical_id"], {"payload_hash": cut, **times})
    _reframe(old, rewritten, width, to_width)
    op.drop_table(old.name)

    old = set_aside("canonical_records", f"canonical_records_{'before' if lean else 'after'}"
                                          "_0014")
    _create_records(lean)
    _copy(old, "canonical_records", ["entity_id", "canonical_id", "memory"], times)
    op.drop_table(old.name)


def upgrade() -> None:
    _rebuild(lean=True)


def downgrade() -> None:
    _rebuild(lean=False)

"""Payload hashes in ``xref`` as bytes: a 128-bit hash in 16 bytes instead of 32 hex digits.

The column keeps its name and its meaning; the values are stored as
:func:`crm2erp.store.types.digest_bytes` makes them (a hex digest as its bytes,
a deletion mark as framed UTF-8), so the store hands out the same text as
before and nothing is written again after the upgrade. The rows are converted
in batches of 1,000 by id; the downgrade turns them back into text.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from crm2erp.store.migrations.columns import digest
from crm2erp.store.types import WIDE_DIGEST_BYTES, digest_bytes, digest_text

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BATCH = 1000


def _copy(source: str, target: str, convert: Callable[[Any], Any],
          kind: sa.types.TypeEngine) -> None:
    """xref's ``source`` column, converted, into ``target``, a batch at a time by id."""
    conn = op.get_bind()
    xref = sa.table("xref", sa.column("id"), sa.column(source), sa.column(target))
    after = 0
    while True:
        rows = conn.execute(sa.select(xref.c.id, xref.c[source])
                            .where(xref.c.id > after, xref.c[source].is_not(None))
                            .order_by(xref.c.id).limit(BATCH)).all()
        if not rows:
            return
        conn.execute(xref.update().where(xref.c.id == sa.bindparam("row_id"))
                     .values({target: sa.bindparam("value", type_=kind)}),
                     [{"row_id": row_id, "value": convert(value)} for row_id, value in rows])
        after = rows[-1][0]


def upgrade() -> None:
    op.add_column("xref", sa.Column("payload_digest", digest(), nullable=True))
    _copy("payload_hash", "payload_digest", lambda text: digest_bytes(text, WIDE_DIGEST_BYTES),
          sa.LargeBinary())
    with op.batch_alter_table("xref") as batch:
        batch.drop_column("payload_hash")
        batch.alter_column("payload_digest", new_column_name="payload_hash",
                           existing_type=digest(), existing_nullable=True)


def downgrade() -> None:
    op.add_column("xref", sa.Column("payload_text", sa.String(128), nullable=True))
    _copy("payload_hash", "payload_text", lambda stored: digest_text(stored, WIDE_DIGEST_BYTES),
          sa.String(128))
    with op.batch_alter_table("xref") as batch:
        batch.drop_column("payload_hash")
        batch.alter_column("payload_text", new_column_name="payload_hash",
                           existing_type=sa.String(128), existing_nullable=True)

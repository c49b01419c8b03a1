"""Trained matching models per flow (``crm2erp dedupe train``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm2erp.store.migrations.columns import long_text, table_args, ts

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dedupe_models",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("n_records", sa.Integer, nullable=False),
        sa.Column("n_pairs", sa.Integer, nullable=False),
        sa.Column("model", long_text(), nullable=False),
        sa.Column("trained_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dedupe_models"),
        **table_args(),
    )
    op.create_index("ix_dedupe_models_flow_id", "dedupe_models", ["flow", "id"])


def downgrade() -> None:
    op.drop_index("ix_dedupe_models_flow_id", table_name="dedupe_models")
    op.drop_table("dedupe_models")

"""Canonical memory: last canonical state per record, and the conflict log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm2erp.store.migrations.columns import long_text, table_args, ts

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    args = table_args()
    op.create_table(
        "canonical_records",
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("canonical_id", sa.String(191), nullable=False),
        sa.Column("data", long_text(), nullable=False),
        sa.Column("field_times", long_text(), nullable=False),
        sa.Column("updated_at", ts(), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("entity", "canonical_id", name="pk_canonical_records"),
        **args,
    )
    op.create_table(
        "conflicts",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("canonical_id", sa.String(191), nullable=False),
        sa.Column("field", sa.String(191), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("incoming", sa.Text, nullable=True),
        sa.Column("kept", sa.Text, nullable=True),
        sa.Column("winner", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("created_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conflicts"),
        **args,
    )
    op.create_index("ix_conflicts_flow_id", "conflicts", ["flow", "id"])


def downgrade() -> None:
    op.drop_index("ix_conflicts_flow_id", table_name="conflicts")
    op.drop_table("conflicts")
    op.drop_table("canonical_records")

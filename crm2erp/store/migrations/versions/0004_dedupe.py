"""Deduplication: scored pairs with review decisions, cluster members, provenance.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm2erp.store.migrations.columns import long_text, table_args, ts

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    args = table_args()
    op.create_table(
        "dedupe_pairs",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("left_id", sa.String(191), nullable=False),
        sa.Column("right_id", sa.String(191), nullable=False),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("match_probability", sa.Float, nullable=False),
        sa.Column("match_weight", sa.Float, nullable=False),
        sa.Column("left_label", sa.String(191), nullable=True),
        sa.Column("right_label", sa.String(191), nullable=True),
        sa.Column("details", long_text(), nullable=False),
        sa.Column("decided_by", sa.String(191), nullable=True),
        sa.Column("decided_at", ts(), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("created_at", ts(), nullable=False),
        sa.Column("updated_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dedupe_pairs"),
        sa.UniqueConstraint("entity", "left_id", "right_id",
                            name="uq_dedupe_pairs_entity_left_id_right_id"),
        **args,
    )
    op.create_index("ix_dedupe_pairs_status_flow", "dedupe_pairs", ["status", "flow"])
    op.create_index("ix_dedupe_pairs_entity_right_id", "dedupe_pairs", ["entity", "right_id"])

    op.create_table(
        "dedupe_members",
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("member_id", sa.String(191), nullable=False),
        sa.Column("canonical_id", sa.String(191), nullable=False),
        sa.Column("system", sa.String(64), nullable=True),
        sa.Column("source_key", sa.String(191), nullable=True),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("data", long_text(), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("updated_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "member_id", name="pk_dedupe_members"),
        **args,
    )
    op.create_index("ix_dedupe_members_entity_canonical_id", "dedupe_members",
                    ["entity", "canonical_id"])
    op.create_index("ix_dedupe_members_entity_system_source_key", "dedupe_members",
                    ["entity", "system", "source_key"])

    op.create_table(
        "dedupe_provenance",
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("canonical_id", sa.String(191), nullable=False),
        sa.Column("field", sa.String(191), nullable=False),
        sa.Column("member_id", sa.String(191), nullable=True),
        sa.Column("system", sa.String(64), nullable=True),
        sa.Column("source_key", sa.String(191), nullable=True),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("updated_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "canonical_id", "field",
                                name="pk_dedupe_provenance"),
        **args,
    )


def downgrade() -> None:
    op.drop_table("dedupe_provenance")
    op.drop_index("ix_dedupe_members_entity_system_source_key", table_name="dedupe_members")
    op.drop_index("ix_dedupe_members_entity_canonical_id", table_name="dedupe_members")
    op.drop_table("dedupe_members")
    op.drop_index("ix_dedupe_pairs_entity_right_id", table_name="dedupe_pairs")
    op.drop_index("ix_dedupe_pairs_status_flow", table_name="dedupe_pairs")
    op.drop_table("dedupe_pairs")

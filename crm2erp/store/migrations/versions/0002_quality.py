"""Data quality: per-run rule results and reconciliations.

Revision ID: 0002
Revises: 0001
Create Date: 2024-07-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm2erp.store.migrations.columns import table_args, ts

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RECONCILE_COUNTS = ("source_count", "target_count", "matched", "missing_in_target",
                    "only_in_target", "different", "orphaned", "unmapped")


def upgrade() -> None:
    args = table_args()
    op.create_table(
        "quality_results",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("rule", sa.String(191), nullable=False),
        sa.Column("expectation", sa.String(128), nullable=False),
        sa.Column("column_name", sa.String(191), nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("evaluated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("sample", sa.Text, nullable=True),
        sa.Column("created_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quality_results"),
        sa.UniqueConstraint("run_id", "rule", name="uq_quality_results_run_id_rule"),
        **args,
    )
    op.create_index("ix_quality_results_flow_run_id", "quality_results", ["flow", "run_id"])

    op.create_table(
        "reconciliations",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("started_at", ts(), nullable=False),
        sa.Column("finished_at", ts(), nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False, server_default="0")
          for name in RECONCILE_COUNTS),
        sa.Column("details", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliations"),
        **args,
    )
    op.create_index("ix_reconciliations_flow_id", "reconciliations", ["flow", "id"])


def downgrade() -> None:
    op.drop_index("ix_reconciliations_flow_id", table_name="reconciliations")
    op.drop_table("reconciliations")
    op.drop_index("ix_quality_results_flow_run_id", table_name="quality_results")
    op.drop_table("quality_results")

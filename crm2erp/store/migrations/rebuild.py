"""Helpers of the migrations that build a table anew and copy its rows over (0013, 0014).

Like :mod:`crm2erp.store.migrations.columns`, nothing here may change what it does: a
migration must keep doing what it did when it was released.
"""

from __future__ import annotations

__all__ = ["set_aside"]

import sqlalchemy as sa
from alembic import op


def set_aside(table: str, aside: str) -> sa.TableClause:
    """Rename ``table`` to ``aside`` (its primary key's name freed first: PostgreSQL
    names constraints per schema); a clause to copy its rows from."""
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(f"pk_{table}", table, type_="primary")
    op.rename_table(table, aside)
    columns = sa.inspect(op.get_bind()).get_columns(aside)
    return sa.table(aside, *(sa.column(c["name"]) for c in columns))

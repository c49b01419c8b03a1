"""The SQL connector: any database SQLAlchemy can reach, as source and as target.

See ``docs/connectors/sql.md`` for the configuration reference.
"""

from __future__ import annotations

__all__ = ["SqlConfig", "SqlConnector"]

from crm2erp.connectors.sql.config import SqlConfig
from crm2erp.connectors.sql.target import SqlTargetMixin


class SqlConnector(SqlTargetMixin):
    """Reads tables incrementally by a cursor column and upserts rows by key.

    The read side lives in :mod:`.source`, the write side in :mod:`.target`,
    the engine and table reflection in :mod:`.tables`.
    """

    name = "sql"
    Config = SqlConfig

"""Column types and table options shared by the migration scripts.

A migration must keep creating exactly what it created when it was released,
so nothing here may change: a revision that needs a different type or option
adds a new function instead of editing one of these.
"""

from __future__ import annotations

__all__ = ["ts", "micros", "long_text", "long_bytes", "digest", "canonical_id",
           "table_args"]

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql


def ts() -> sa.types.TypeEngine:
    """Aware timestamps; MariaDB has no time zone type, so DATETIME(6) holding UTC."""
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def micros() -> sa.types.TypeEngine:
    """Aware timestamps that SQLite keeps as integer microseconds since the epoch (see
    :class:`crm2erp.store.types.UTCMicros`); elsewhere as :func:`ts`."""
    return (sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
            .with_variant(sa.BigInteger(), "sqlite"))


def long_text() -> sa.types.TypeEngine:
    """Text over 64 KiB: MariaDB's TEXT stops there, payloads with children can be larger."""
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def long_bytes() -> sa.types.TypeEngine:
    """Binary values over 64 KiB: BYTEA, BLOB, MariaDB's MEDIUMBLOB."""
    return sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")


def digest() -> sa.types.TypeEngine:
    """A payload hash as bytes (see :class:`crm2erp.store.types.Digest`): BYTEA, BLOB,
    MariaDB's VARBINARY(130)."""
    return sa.LargeBinary().with_variant(mysql.VARBINARY(130), "mysql", "mariadb")


def canonical_id() -> sa.types.TypeEngine:
    """A canonical id as bytes (see :class:`crm2erp.store.types.CanonicalId`): BYTEA,
    BLOB, MariaDB's VARBINARY(765)."""
    return sa.LargeBinary().with_variant(mysql.VARBINARY(765), "mysql", "mariadb")


def table_args() -> dict:
    """InnoDB, utf8mb4 and a binary collation: external ids are case-sensitive
    (see :mod:`crm2erp.store.types`). Needs the migration's bind (``op``)."""
    dialect = op.get_bind().dialect
    collate = "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_bin"
    return {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": collate}

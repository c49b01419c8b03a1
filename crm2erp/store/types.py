"""Column types that behave the same on SQLite, PostgreSQL and MariaDB.

Timestamps are the tricky part: PostgreSQL has ``timestamptz`` and returns
aware datetimes in the session's time zone, while SQLite and MariaDB store
naive values. :class:`UTCDateTime` stores every timestamp as UTC (naive where
the database has no time zone support) and always hands back an aware UTC
datetime, so callers never compare naive and aware values.
"""

from __future__ import annotations

__all__ = ["UTCDateTime", "Digest", "LongText", "LongBytes", "utcnow", "mysql_table_args"]

import datetime as dt
import re

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

UTC = dt.UTC

# JSON payloads and messages: MariaDB's TEXT stops at 64 KiB, too small for a
# record with its children; MEDIUMTEXT holds 16 MiB. Text elsewhere.
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
# binary values (a compressed record), up to 16 MiB on MariaDB too
LongBytes = sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")


def mysql_table_args(dialect) -> dict[str, str]:
    """Table options for MariaDB/MySQL (ignored by the other databases).

    A binary collation, because external ids are case-sensitive (Salesforce
    ids may differ only in case) and the default ``utf8mb4_general_ci`` would
    make ``0015g00000AbC`` and ``0015g00000abc`` collide on the unique xref
    key. MariaDB's NO PAD variant also keeps ``"A"`` and ``"A "`` apart.
    """
    collate = "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_bin"
    return {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": collate}


def inserted_id(result: sa.CursorResult) -> int:
    """The primary key an ``INSERT`` of one row created."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the INSERT returned no primary key")
    return int(key[0])


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator):
    """A timestamp stored in UTC and always returned as an aware UTC datetime."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in ("mysql", "mariadb"):
            # microseconds: run ordering and lock expiry need sub-second precision
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the state store needs aware datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "postgresql":
            return value
        return value.replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_HEX_DIGEST = re.compile(r"[0-9a-f]{32}")
_DIGEST_BYTES = 16
_TEXT = b"\xff"   # never in UTF-8: frames a value that is not a hex digest


def digest_bytes(value: str) -> bytes:
    """How :class:`Digest` stores ``value``: a 128-bit hex digest (32 lowercase hex
    digits, :func:`crm2erp.jsonutil.text_hash`) as its 16 bytes; any other text (a
    deletion mark) as its UTF-8 after a 0xFF byte, and one more 0xFF at the end if that
    came to 16 bytes: only a digest is 16 bytes long."""
    if _HEX_DIGEST.fullmatch(value):
        return bytes.fromhex(value)
    stored = _TEXT + value.encode()
    return stored + _TEXT if len(stored) == _DIGEST_BYTES else stored


def digest_text(stored: bytes) -> str:
    """The text :func:`digest_bytes` stored, back."""
    stored = bytes(stored)   # some drivers hand out a memoryview
    if len(stored) == _DIGEST_BYTES:
        return stored.hex()
    return stored.strip(_TEXT).decode()


class Digest(sa.TypeDecorator):
    """A payload hash as binary: half the bytes of its hex text (see :func:`digest_bytes`);
    Python code sees the same text it wrote."""

    impl = sa.LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.VARBINARY(130))
        return dialect.type_descriptor(sa.LargeBinary())

    def process_bind_param(self, value, dialect):
        return None if value is None else digest_bytes(value)

    def process_result_value(self, value, dialect):
        return None if value is None else digest_text(value)

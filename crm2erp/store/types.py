"""Column types that behave the same on SQLite, PostgreSQL and MariaDB.

Timestamps are the tricky part: PostgreSQL has ``timestamptz`` and returns
aware datetimes in the session's time zone, while SQLite and MariaDB store
naive values. :class:`UTCDateTime` stores every timestamp as UTC (naive where
the database has no time zone support) and always hands back an aware UTC
datetime, so callers never compare naive and aware values.
"""

from __future__ import annotations

__all__ = ["UTCDateTime", "UTCMicros", "Digest", "WideDigest", "CanonicalId", "LongText",
           "LongBytes", "utcnow", "mysql_table_args", "DIGEST_BYTES", "WIDE_DIGEST_BYTES",
           "one_of_values"]

import datetime as dt
import functools
import re

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

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


class UTCMicros(UTCDateTime):
    """A :class:`UTCDateTime` that SQLite keeps as an integer of microseconds since the
    epoch (8 bytes instead of 26 characters of text); PostgreSQL and MariaDB keep their
    native 8-byte timestamps. For the columns of the tables with a row per record."""

    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return super().load_dialect_impl(dialect)

    def process_bind_param(self, value, dialect):
        value = super().process_bind_param(value, dialect)
        if value is None or dialect.name != "sqlite":
            return value
        return (value - _EPOCH) // _MICROSECOND

    def process_result_value(self, value, dialect):
        if value is not None and dialect.name == "sqlite":
            return _EPOCH_UTC + dt.timedelta(microseconds=value)
        return super().process_result_value(value, dialect)


_EPOCH = dt.datetime(1970, 1, 1)          # naive: what UTCDateTime binds on SQLite
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)
_MICROSECOND = dt.timedelta(microseconds=1)

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PACKED_BYTES = 16   # a uuid canonical id
_TEXT = b"\xff"   # never in UTF-8: frames a value that is not packed

#: a payload hash: 64 bits (:func:`crm2erp.jsonutil.text_hash`, 16 hex digits) in 8 bytes
DIGEST_BYTES = 8
#: the 128-bit payload hashes that revisions 0010 to 0013 stored; only their migrations
#: and 0014, which cuts them to 64 bits, use this width
WIDE_DIGEST_BYTES = 16


def _framed(value: str, packed: int = _PACKED_BYTES) -> bytes:
    """Text that has no packed form: its UTF-8 after a 0xFF byte, and one more 0xFF at
    the end if that came to ``packed`` bytes (only a packed value is that long)."""
    stored = _TEXT + value.encode()
    return stored + _TEXT if len(stored) == packed else stored


def _unframed(stored: bytes) -> str:
    return stored.strip(_TEXT).decode()


@functools.cache
def _hex_digest(width: int) -> re.Pattern[str]:
    return re.compile(f"[0-9a-f]{{{2 * width}}}")


def digest_bytes(value: str, width: int = DIGEST_BYTES) -> bytes:
    """How :class:`Digest` stores ``value``: a hex digest of ``width`` bytes (``2 * width``
    lowercase hex digits, :func:`crm2erp.jsonutil.text_hash`) as its bytes; any other
    text (a deletion mark) framed (see :func:`_framed`)."""
    if _hex_digest(width).fullmatch(value):
        return bytes.fromhex(value)
    return _framed(value, width)


def digest_text(stored: bytes, width: int = DIGEST_BYTES) -> str:
    """The text :func:`digest_bytes` stored, back."""
    stored = bytes(stored)   # some drivers hand out a memoryview
    if len(stored) == width:
        return stored.hex()
    return _unframed(stored)


# A sync batch binds each canonical id about five times (look-ups, xref rows of both
# systems, the hub memory): the conversions of the last few batches are kept.
@functools.lru_cache(maxsize=4096)
def canonical_id_bytes(value: str) -> bytes:
    """How :class:`CanonicalId` stores ``value``: a uuid in its canonical text form (36
    characters, lowercase, what :mod:`crm2erp.engine.resolver` makes) as its 16 bytes;
    any other id framed (see :func:`_framed`)."""
    if _UUID.fullmatch(value):
        return bytes.fromhex(value.replace("-", ""))   # uuid.UUID: 2.5x the time
    return _framed(value)


def canonical_id_text(stored: bytes) -> str:
    """The id :func:`canonical_id_bytes` stored, back."""
    stored = bytes(stored)
    if len(stored) == _PACKED_BYTES:
        digits = stored.hex()   # str(uuid.UUID(bytes=...)): 3x the time
        return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
    return _unframed(stored)


class Digest(sa.TypeDecorator):
    """A payload hash as binary: half the bytes of its hex text (see :func:`digest_bytes`);
    Python code sees the same text it wrote. 64 bits (migration 0014)."""

    impl = sa.LargeBinary
    cache_ok = True
    width = DIGEST_BYTES

    def load_dialect_impl(self, dialect):
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.VARBINARY(130))
        return dialect.type_descriptor(sa.LargeBinary())

    def process_bind_param(self, value, dialect):
        return None if value is None else digest_bytes(value, self.width)

    def process_result_value(self, value, dialect):
        return None if value is None else digest_text(value, self.width)


class WideDigest(Digest):
    """The 128-bit :class:`Digest` of revisions 0010 to 0013 (16 bytes), for their
    migrations: a migration reads and writes what it did when it was released."""

    cache_ok = True
    width = WIDE_DIGEST_BYTES


class CanonicalId(sa.TypeDecorator):
    """A canonical id as binary: a uuid in 16 bytes instead of 36 characters (see
    :func:`canonical_id_bytes`); Python code sees the same text it wrote. Binary on
    PostgreSQL too (not ``uuid``): a canonical id may be any text of up to 191
    characters. Byte order sorts uuids as their text sorts."""

    impl = sa.LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.VARBINARY(CANONICAL_ID_BYTES))
        return dialect.type_descriptor(sa.LargeBinary())

    def process_bind_param(self, value, dialect):
        return None if value is None else canonical_id_bytes(value)

    def process_result_value(self, value, dialect):
        return None if value is None else canonical_id_text(value)


#: the longest framed id: 191 characters of 4-byte UTF-8 and the 0xFF byte
CANONICAL_ID_BYTES = 191 * 4 + 1


def one_of_values(column: sa.ColumnElement, name: str) -> sa.ColumnElement[bool]:
    """PostgreSQL: ``column = ANY(:name)``, the bind parameter ``name`` one array of the
    column's values, so the statement's text is the same for any number of them. Text
    binds as unbounded ``varchar[]``: a cast to ``varchar(n)[]`` would cut a longer value
    to n characters."""
    item = sa.String() if isinstance(column.type, sa.String) else column.type
    return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(item)))

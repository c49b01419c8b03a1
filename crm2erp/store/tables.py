"""The state store's tables, as SQLAlchemy Core metadata.

The schema itself is created by the Alembic migrations in
:mod:`crm2erp.store.migrations`; this metadata is what the queries use, and a
test checks that the two agree. Indexed strings stay within 191 characters so
that a MariaDB utf8mb4 index key fits. ``run_id`` columns deliberately carry
no foreign key: old runs can be pruned without touching the state they left.
"""

from __future__ import annotations

__all__ = [
    "metadata",
    "names",
    "runs",
    "watermarks",
    "xref",
    "dead_letters",
    "locks",
    "canonical_records",
    "conflicts",
    "dedupe_pairs",
    "dedupe_members",
    "dedupe_provenance",
    "dedupe_models",
    "DEDUPE_PAIR_STATUSES",
    "COUNT_FIELDS",
    "RUN_MODES",
    "RUN_STATUSES",
    "DEAD_LETTER_STATUSES",
    "ACTIVE_DEAD_LETTER_STATUSES",
]

import sqlalchemy as sa

from crm2erp.store.types import CanonicalId, Digest, LongBytes, LongText, UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = sa.MetaData(naming_convention=NAMING)

COUNT_FIELDS = ("read", "created", "updated", "unchanged", "skipped", "failed",
                "parked", "deleted")
# "full": a flow without `incremental` reads its whole source on every run
RUN_MODES = ("incremental", "full", "full_refresh", "since", "dry_run", "retry")
# crashed: the process died while running (found by the next run or by status)
RUN_STATUSES = ("running", "succeeded", "partial", "failed", "stopped", "crashed")
DEAD_LETTER_STATUSES = ("open", "parked", "resolved", "discarded", "retrying")
# statuses of a dead letter that still waits for its record to go through;
# a key has at most one entry in one of these
ACTIVE_DEAD_LETTER_STATUSES = ("open", "parked", "retrying")

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("mode", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    *(sa.Column(name, sa.Integer, nullable=False, server_default="0")
      for name in COUNT_FIELDS),
    sa.Column("message", LongText, nullable=True),
    sa.Column("owner", sa.String(191), nullable=True),   # lock owner of its process
    sa.Column("warnings", LongText, nullable=True),   # one per line
    sa.Index(None, "flow", "id"),
)

watermarks = sa.Table(
    "watermarks", metadata,
    sa.Column("flow", sa.String(100), primary_key=True),
    sa.Column("stream", sa.String(100), primary_key=True),
    sa.Column("value", LongText, nullable=True),
    sa.Column("key", sa.String(191), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.Integer, nullable=True),
)

# Entity and system names as numbers (crm2erp.store.names): the tables with a row
# per record hold the number instead of the name (migration 0013).
names = sa.Table(
    "names", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
)

# A row per record and system: kept small (migrations 0011 to 0014). The natural key
# is the primary key, and on SQLite the table itself (WITHOUT ROWID); entity and
# system are numbers (names), canonical ids 16 bytes (CanonicalId), payload hashes 8
# (Digest). No time or run: nothing read them (0014). Fixed-width columns first:
# PostgreSQL pads less.
xref = sa.Table(
    "xref", metadata,
    sa.Column("entity_id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("system_id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("external_id", sa.String(191), primary_key=True),
    sa.Column("canonical_id", CanonicalId(), nullable=False),
    sa.Column("payload_hash", Digest(), nullable=True),   # binary: see Digest
    # not unique: a dedupe merge maps two source records to one canonical id; the id
    # alone finds its few rows (one per system), a narrower index (migration 0012). On
    # PostgreSQL a hash index, packed full: 4 bytes of hash an entry instead of the
    # id, 25% smaller (migration 0014); equality and IN look-ups are all it serves.
    sa.Index(None, "canonical_id", postgresql_using="hash",
             postgresql_with={"fillfactor": 100}),
    sqlite_with_rowid=False,
)

dead_letters = sa.Table(
    "dead_letters", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("run_id", sa.Integer, nullable=True),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("source_key", sa.String(191), nullable=False),
    sa.Column("error", LongText, nullable=False),
    sa.Column("payload", LongText, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index(None, "flow", "source_key", "status"),
    sa.Index(None, "status", "flow"),
)

locks = sa.Table(
    "locks", metadata,
    sa.Column("flow", sa.String(100), primary_key=True),
    sa.Column("owner", sa.String(191), nullable=False),
    sa.Column("acquired_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
)

# The hub's memory: the last canonical state of every synced record and when
# each field last changed in which system. It lets a two-way flow recognise
# its own writes coming back (no echo) and settle conflicting edits by field
# ownership or last-modified. ``memory`` holds the record's data and field
# times together, compressed: read and write it only with
# crm2erp.store.fieldmemory's decode() and encode(). No time or run (migration 0014).
canonical_records = sa.Table(
    "canonical_records", metadata,
    sa.Column("entity_id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("canonical_id", CanonicalId(), primary_key=True),
    sa.Column("memory", LongBytes, nullable=False),
    sqlite_with_rowid=False,   # the primary key is the table (migration 0009)
)

conflicts = sa.Table(
    "conflicts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
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
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index(None, "flow", "id"),
)

# Deduplication (issue 7): scored candidate pairs with the steward's decisions,
# which records were merged into which canonical record, and which member
# supplied each surviving field of the golden record.
# merged: linked automatically; pending: awaiting review; accepted / rejected:
# a steward's decision, honoured in every later run.
DEDUPE_PAIR_STATUSES = ("merged", "pending", "accepted", "rejected")

dedupe_pairs = sa.Table(
    "dedupe_pairs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("left_id", sa.String(191), nullable=False),   # left_id < right_id
    sa.Column("right_id", sa.String(191), nullable=False),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("match_probability", sa.Float, nullable=False),
    sa.Column("match_weight", sa.Float, nullable=False),
    sa.Column("left_label", sa.String(191), nullable=True),
    sa.Column("right_label", sa.String(191), nullable=True),
    sa.Column("details", LongText, nullable=False),   # JSON: records and per-field scores
    sa.Column("decided_by", sa.String(191), nullable=True),
    sa.Column("decided_at", UTCDateTime(), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("run_id", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("entity", "left_id", "right_id"),
    sa.Index(None, "status", "flow"),
    sa.Index(None, "entity", "right_id"),
)

dedupe_members = sa.Table(
    "dedupe_members", metadata,
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("member_id", sa.String(191), primary_key=True),
    sa.Column("canonical_id", sa.String(191), nullable=False),
    sa.Column("system", sa.String(64), nullable=True),
    sa.Column("source_key", sa.String(191), nullable=True),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("data", LongText, nullable=False),      # the member's last record (JSON)
    sa.Column("run_id", sa.Integer, nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index(None, "entity", "canonical_id"),
    sa.Index(None, "entity", "system", "source_key"),
)

dedupe_provenance = sa.Table(
    "dedupe_provenance", metadata,
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("canonical_id", sa.String(191), primary_key=True),
    sa.Column("field", sa.String(191), primary_key=True),
    sa.Column("member_id", sa.String(191), nullable=True),
    sa.Column("system", sa.String(64), nullable=True),
    sa.Column("source_key", sa.String(191), nullable=True),
    sa.Column("rule", sa.String(32), nullable=False),
    sa.Column("run_id", sa.Integer, nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# A trained matching model per flow (``crm2erp dedupe train``, issue 13): every
# training that passed the plausibility checks adds a row; runs use the newest.
dedupe_models = sa.Table(
    "dedupe_models", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("n_records", sa.Integer, nullable=False),
    sa.Column("n_pairs", sa.Integer, nullable=False),
    sa.Column("model", LongText, nullable=False),     # JSON: m, u, lambda per comparison
    sa.Column("trained_at", UTCDateTime(), nullable=False),
    sa.Index(None, "flow", "id"),
)

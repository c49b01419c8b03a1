"""The write path of one sync batch, run inside a single transaction.

:func:`write_batch` is called by :meth:`StateStore.commit_batch` with an open
transaction: the id cross-reference, dead letters, resolutions, watermark and
run counters all change together or not at all, so a crash between two
batches never leaves a watermark ahead of the xref it depends on.
"""

from __future__ import annotations

__all__ = ["write_batch", "upsert", "encode_payload"]

import datetime as dt
import weakref
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from crm2erp import jsonutil
from crm2erp.redact import redact
from crm2erp.store import fieldmemory
from crm2erp.store.records import BatchCommit, BatchResult, DeadLetterWrite
from crm2erp.store.tables import (
    ACTIVE_DEAD_LETTER_STATUSES,
    COUNT_FIELDS,
    canonical_records,
    conflicts,
    dead_letters,
    runs,
    watermarks,
    xref,
)
from crm2erp.store.types import utcnow


def upsert(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]],
           key: Sequence[str], update: Sequence[str]) -> None:
    """Insert ``rows``, updating the ``update`` columns of rows whose ``key`` exists.

    Uses the dialect's native upsert (ON CONFLICT / ON DUPLICATE KEY), so a
    concurrent writer cannot slip a duplicate in between a select and an insert.
    """
    if not rows:
        return
    # of rows with the same key the last one is written, once: one INSERT ... SELECT
    # (the COPY path) may not update a row twice
    rows = list({tuple(row[col] for col in key): row for row in rows}.values())
    if conn.dialect.name not in ("postgresql", "sqlite", "mysql", "mariadb"):
        for row in rows:   # portable fallback, safe under the flow lock
            where = sa.and_(*(table.c[col] == row[col] for col in key))
            done = conn.execute(
                table.update().where(where).values({col: row[col] for col in update}))
            if done.rowcount == 0:
                conn.execute(table.insert().values(row))
        return
    prepared = _prepared_upsert(conn.dialect, table, tuple(rows[0]), tuple(key), tuple(update))
    if prepared.copy_sql is not None and len(rows) > 1:
        _copy_upsert(conn, prepared, rows)
    else:
        conn.exec_driver_sql(prepared.sql, prepared.parameters(rows))


def _copy_upsert(conn: sa.Connection, prepared: _PreparedUpsert,
                 rows: Sequence[dict[str, Any]]) -> None:
    """PostgreSQL (psycopg): the rows COPYed into a temporary table, then one INSERT ...
    SELECT ... ON CONFLICT DO UPDATE: one round trip for the data and one statement for
    the upsert, where an executemany sends and runs a statement per row (half the
    client's CPU of a state store batch). The stage has one name, dropped when done, so
    the next table or column shape of the same transaction stages under it too."""
    conn.exec_driver_sql(prepared.stage_sql)
    psycopg_connection: Any = conn.connection.driver_connection
    driver_error = conn.dialect.loaded_dbapi.Error
    try:
        with psycopg_connection.cursor() as cursor:
            with cursor.copy(prepared.copy_sql) as copy:
                for values in zip(*prepared.columns(rows), strict=True):
                    copy.write_row(values)
    except driver_error as exc:   # raised by the driver itself: wrapped as SQLAlchemy would
        raise sa.exc.DBAPIError.instance(
            prepared.copy_sql, None, exc, driver_error, dialect=conn.dialect,
            connection_invalidated=conn.dialect.is_disconnect(exc, None, None)) from exc
    conn.exec_driver_sql(prepared.from_stage_sql)
    conn.exec_driver_sql(f"DROP TABLE {_STAGE}")


#: the temporary table of :func:`_copy_upsert`
_STAGE = "crm2erp_stage"


class _PreparedUpsert:
    """An upsert compiled once per dialect, table and columns, run as one executemany
    on the driver (or, on PostgreSQL with psycopg, as :func:`_copy_upsert`):
    SQLAlchemy's per-row parameter building (the most part of a state store write) is
    left out; each column's bind processor is taken once."""

    def __init__(self, dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...],
                 key: tuple[str, ...], update: tuple[str, ...]):
        name = dialect.name
        if name in ("postgresql", "sqlite"):
            insert = postgresql.insert if name == "postgresql" else sqlite.insert
            stmt: Any = insert(table).inline()
            stmt = stmt.on_conflict_do_update(
                index_elements=list(key), set_={col: stmt.excluded[col] for col in update})
        else:
            stmt = mysql.insert(table).inline()
            stmt = stmt.on_duplicate_key_update({col: stmt.inserted[col] for col in update})
        compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
        self.sql = compiled.string
        self.names: tuple[str, ...] = (tuple(compiled.positiontup or ()) if compiled.positional
                                       else columns)
        self.positional = compiled.positional
        self.processors = [_bind_processor(table.c[col].type, dialect) for col in self.names]
        # only a timestamp's processing is shared between equal values: of other types,
        # equal values may still be written differently (1 and True, Decimal 1.0 and 1.00)
        self.per_value = [_is_timestamp(table.c[col].type) for col in self.names]
        self.copy_sql: str | None = None
        if name == "postgresql" and dialect.driver == "psycopg":
            quote = dialect.identifier_preparer.quote
            listed = ", ".join(quote(col) for col in self.names)
            self.stage_sql = (f"CREATE TEMPORARY TABLE {_STAGE} ON COMMIT DROP AS SELECT "
                              f"{listed} FROM {dialect.identifier_preparer.format_table(table)}"
                              " WITH NO DATA")
            self.copy_sql = f"COPY {_STAGE} ({listed}) FROM STDIN"
            staged = sa.table(_STAGE, *(sa.column(col) for col in self.names))
            from_stage = postgresql.insert(table).from_select(list(self.names),
                                                              sa.select(*staged.c))
            self.from_stage_sql = from_stage.on_conflict_do_update(
                index_elements=list(key), set_={col: from_stage.excluded[col] for col in update}
            ).compile(dialect=dialect).string

    def columns(self, rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
        """The rows' values for the database, column by column in the statement's order:
        a bind processor (a timestamp's) runs once per distinct value, not once per row."""
        columns = [[row[col] for row in rows] for col in self.names]
        for i, process in enumerate(self.processors):
            if process is not None:
                columns[i] = (_process_distinct(process, columns[i]) if self.per_value[i]
                              else [process(value) for value in columns[i]])
        return columns

    def parameters(self, rows: Sequence[dict[str, Any]]) -> list[Any]:
        """The rows' values as the executemany's parameters (see :meth:`columns`)."""
        columns = self.columns(rows)
        if self.positional:
            return list(zip(*columns, strict=True))
        return [dict(zip(self.names, values, strict=True)) for values in zip(*columns, strict=True)]


def _bind_processor(column_type: sa.types.TypeEngine, dialect: sa.Dialect) -> Any:
    """The column's bind processor, on SQLite without the ``memoryview`` SQLAlchemy wraps
    a binary value in (sqlite3 binds ``bytes`` as a BLOB as they are): that wrapping was
    a third of the parameter building of a state store batch (xref ids and hashes, hub
    memory)."""
    impl = column_type.dialect_impl(dialect)
    if dialect.name == "sqlite" and isinstance(getattr(impl, "impl_instance", impl),
                                               sa.LargeBinary):
        if isinstance(impl, sa.TypeDecorator):
            to_bytes = impl.process_bind_param
            return lambda value: to_bytes(value, dialect)
        return None
    return impl.bind_processor(dialect)


def _is_timestamp(column_type: sa.types.TypeEngine) -> bool:
    """A DateTime column, also behind a TypeDecorator (the store's UTCDateTime)."""
    return isinstance(getattr(column_type, "impl", column_type), sa.DateTime)


def _process_distinct(process: Any, values: list[Any]) -> list[Any]:
    try:
        done = {value: process(value) for value in set(values)}
    except TypeError:   # unhashable values: each one on its own
        return [process(value) for value in values]
    return [done[value] for value in values]


_PREPARED: weakref.WeakKeyDictionary[sa.Dialect, dict[tuple, _PreparedUpsert]] = \
    weakref.WeakKeyDictionary()


def _prepared_upsert(dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...],
                     key: tuple[str, ...], update: tuple[str, ...]) -> _PreparedUpsert:
    by_shape = _PREPARED.setdefault(dialect, {})
    shape = (table.fullname, columns, key, update)
    if shape not in by_shape:
        by_shape[shape] = _PreparedUpsert(dialect, table, columns, key, update)
    return by_shape[shape]


def encode_payload(payload: Any) -> str | None:
    """The JSON text stored for a payload: the record exactly as read.

    A payload is business data, never redacted (a CRM note saying
    ``password=hunter2`` is data); only error messages are.
    """
    return None if payload is None else jsonutil.dumps(payload)


def _write_xref(conn: sa.Connection, batch: BatchCommit, numbers: dict[str, int]) -> None:
    rows = [   # an external id twice in the batch: upsert writes the last
        {"entity_id": numbers[u.entity], "system_id": numbers[u.system],
         "external_id": u.external_id,
         "canonical_id": u.canonical_id, "payload_hash": u.payload_hash}
        for u in batch.xref
    ]
    upsert(conn, xref, rows, key=("entity_id", "system_id", "external_id"),
           update=("canonical_id", "payload_hash"))


def _write_dead_letters(conn: sa.Connection, batch: BatchCommit,
                        now: dt.datetime) -> list[DeadLetterWrite]:
    """One SELECT for the keys' active entries, one executemany INSERT for the keys
    without one, one executemany UPDATE for the others: never a statement per letter.
    A key failing twice in the batch is one entry whose attempts count both."""
    keys = {d.source_key for d in batch.dead_letters}
    active: dict[str, tuple[int | None, str | None, int]] = {}
    if keys:
        found = conn.execute(
            sa.select(dead_letters.c.id, dead_letters.c.source_key,
                      dead_letters.c.payload, dead_letters.c.attempts)
            .where(dead_letters.c.flow == batch.flow,
                   dead_letters.c.source_key.in_(keys),
                   dead_letters.c.status.in_(ACTIVE_DEAD_LETTER_STATUSES))
            .order_by(dead_letters.c.id))
        for row in found:
            active[row.source_key] = (row.id, row.payload, row.attempts)
    existed = set(active)
    latest: dict[str, dict[str, Any]] = {}      # key -> the row to write, last one wins
    outcomes: list[tuple[str, bool, bool]] = []  # (key, new, payload_changed)
    for letter in batch.dead_letters:
        payload = encode_payload(letter.payload)
        entry_id, old_payload, attempts = active.get(letter.source_key, (None, None, 0))
        new = letter.source_key not in active
        active[letter.source_key] = (entry_id, payload, attempts + 1)
        outcomes.append((letter.source_key, new, new or payload != old_payload))
        latest[letter.source_key] = {
            "run_id": batch.run_id, "stage": letter.stage,
            "error": redact(letter.error or ""), "payload": payload,
            "status": "parked" if letter.stage == "parked" else "open",
            "updated_at": now, "attempts": attempts + 1}
    inserts = [{"flow": batch.flow, "source_key": key, "created_at": now, **row}
               for key, row in latest.items() if key not in existed]
    updates = [{"entry_id": active[key][0], **row}
               for key, row in latest.items() if key in existed]
    if inserts:
        conn.execute(dead_letters.insert(), inserts)
        created = conn.execute(
            sa.select(dead_letters.c.id, dead_letters.c.source_key)
            .where(dead_letters.c.flow == batch.flow,
                   dead_letters.c.source_key.in_([r["source_key"] for r in inserts]),
                   dead_letters.c.status.in_(ACTIVE_DEAD_LETTER_STATUSES)))
        for entry in created:
            active[entry.source_key] = (entry.id, *active[entry.source_key][1:])
    if updates:
        conn.execute(dead_letters.update()
                     .where(dead_letters.c.id == sa.bindparam("entry_id")), updates)
    return [DeadLetterWrite(_known_id(active[key][0], key), key, new=new,
                            payload_changed=changed)
            for key, new, changed in outcomes]


def _known_id(entry_id: int | None, key: str) -> int:
    if entry_id is None:   # every inserted letter was selected back above
        raise RuntimeError(f"dead letter of {key!r} was written but not found")
    return entry_id


# built once: bind parameters, never values (SQLAlchemy coerces each value of an
# ``IN (values)`` anew on every build of the statement)
_RESOLVE = (dead_letters.update()
            .where(dead_letters.c.flow == sa.bindparam("in_flow"),
                   dead_letters.c.source_key.in_(sa.bindparam("keys", expanding=True)),
                   dead_letters.c.status.in_(ACTIVE_DEAD_LETTER_STATUSES))
            .values(status="resolved", updated_at=sa.bindparam("resolved_at")))


def _resolve(conn: sa.Connection, batch: BatchCommit, now: dt.datetime) -> int:
    keys = sorted(set(batch.resolved_keys))
    resolved = 0
    for start in range(0, len(keys), 500):
        resolved += conn.execute(_RESOLVE, {"in_flow": batch.flow, "resolved_at": now,
                                            "keys": keys[start:start + 500]}).rowcount
    return resolved


def _write_watermark(conn: sa.Connection, batch: BatchCommit, now: dt.datetime) -> None:
    if batch.watermark is None:
        return
    stream, cursor = batch.watermark
    upsert(conn, watermarks,
           [{"flow": batch.flow, "stream": stream, "value": jsonutil.dumps(cursor.value),
             "key": cursor.key, "updated_at": now, "run_id": batch.run_id}],
           key=("flow", "stream"), update=("value", "key", "updated_at", "run_id"))


def _write_canonical(conn: sa.Connection, batch: BatchCommit, now: dt.datetime,
                     numbers: dict[str, int]) -> None:
    # last one wins, here already: each record's memory is encoded once
    latest = {(c.entity, c.canonical_id): c for c in batch.canonical}
    upsert(conn, canonical_records,
           [{"entity_id": numbers[c.entity], "canonical_id": c.canonical_id,
             "memory": fieldmemory.encode(c.data, c.field_times)} for c in latest.values()],
           key=("entity_id", "canonical_id"), update=("memory",))
    if batch.conflicts:
        conn.execute(conflicts.insert(), [
            {"run_id": batch.run_id, "flow": batch.flow, "entity": c.entity,
             "canonical_id": c.canonical_id, "field": c.field, "system": c.system,
             "incoming": jsonutil.dumps(c.incoming),
             "kept": jsonutil.dumps(c.kept), "winner": c.winner, "rule": c.rule,
             "created_at": now} for c in batch.conflicts])


def check_counts(counts: dict[str, int]) -> None:
    unknown = sorted(set(counts) - set(COUNT_FIELDS))
    if unknown:
        raise ValueError(f"unknown run counter(s) {', '.join(unknown)}; "
                         f"known: {', '.join(COUNT_FIELDS)}")


def _add_counts(conn: sa.Connection, batch: BatchCommit) -> None:
    increments = {name: runs.c[name] + n for name, n in batch.counts.items() if n}
    if not increments:
        return
    done = conn.execute(runs.update().where(runs.c.id == batch.run_id).values(increments))
    if done.rowcount != 1:
        raise ValueError(f"no run #{batch.run_id} to add counts to; start_run() first")


def write_batch(conn: sa.Connection, batch: BatchCommit,
                numbers: dict[str, int]) -> BatchResult:
    """Apply ``batch`` on ``conn``; the caller owns the transaction. ``numbers``:
    the number of each entity and system name in the batch (:mod:`crm2erp.store.names`).

    A key both dead-lettered and resolved in the same batch ends resolved:
    resolutions are applied after the new failures.
    """
    check_counts(batch.counts)
    now = utcnow()
    _write_xref(conn, batch, numbers)
    written = _write_dead_letters(conn, batch, now)
    resolved = _resolve(conn, batch, now)
    _write_watermark(conn, batch, now)
    _write_canonical(conn, batch, now, numbers)
    _add_counts(conn, batch)
    return BatchResult(dead_letters=written, resolved=resolved)

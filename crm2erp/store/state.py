"""The state store: runs, watermarks, id cross-reference, dead letters, locks.

One :class:`StateStore` wraps one SQLAlchemy engine on SQLite (the default, a
file in the working directory), PostgreSQL or MariaDB. Opening it applies any
pending migration, so an upgraded crm2erp brings its schema along. Reads come
back as frozen records; the write path of a sync batch is the single
transaction of :meth:`StateStore.commit_batch`.
"""

from __future__ import annotations

__all__ = ["StateStore", "DEFAULT_URL", "ENV_URL"]

import datetime as dt
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa

from crm2erp import jsonutil
from crm2erp.contract import Cursor
from crm2erp.errors import ConfigError, FatalError
from crm2erp.redact import redact, register_secret
from crm2erp.store import fieldmemory, locking, migrate
from crm2erp.store.batch import write_batch
from crm2erp.store.dedupe import DedupeStoreMixin
from crm2erp.store.names import NameIds
from crm2erp.store.pinging import ping_when_idle
from crm2erp.store.quality import QualityStoreMixin
from crm2erp.store.records import (
    BatchCommit,
    BatchResult,
    CanonicalState,
    DeadLetter,
    RunRecord,
    XrefEntry,
)
from crm2erp.store.tables import (
    ACTIVE_DEAD_LETTER_STATUSES,
    DEAD_LETTER_STATUSES,
    RUN_MODES,
    RUN_STATUSES,
    canonical_records,
    conflicts,
    dead_letters,
    runs,
    watermarks,
    xref,
)
from crm2erp.store.types import inserted_id, one_of_values, utcnow

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///crm2erp-state.db"
ENV_URL = "CRM2ERP_STATE_URL"
#: Execution option of a connection that only reads (SQLite: a deferred BEGIN).
READ_ONLY = "crm2erp_read_only"

_CHUNK = 1000  # ids per IN (...) query: one query for any normal batch
_FIRST_ANALYZE = 1000  # rows written before the first ANALYZE (see commit_batch)


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    unique = sorted({str(v) for v in values})
    for start in range(0, len(unique), _CHUNK):
        yield unique[start:start + _CHUNK]


def _one_of(column: sa.ColumnElement, dialect: str) -> sa.ColumnElement[bool]:
    """``column IN`` the values of the bind parameter ``ids`` (:func:`_one_of_value`),
    in a statement whose text is the same for any number of ids, so it is built and
    compiled once: PostgreSQL takes an array of the column's type, SQLite a JSON array
    of text (``json_each``, a text column only); elsewhere an expanding ``IN``,
    rendered anew per call."""
    if _as_json(column, dialect):
        ids = sa.func.json_each(sa.bindparam("ids", type_=sa.String)).table_valued("value")
        return column.in_(sa.select(ids.c.value))
    if dialect == "postgresql":
        return one_of_values(column, "ids")
    return column.in_(sa.bindparam("ids", expanding=True))


def _one_of_value(ids: list[str], column: sa.ColumnElement,
                  dialect: str) -> str | list[str]:
    """The ``ids`` parameter of a :func:`_one_of` statement."""
    return json.dumps(ids) if _as_json(column, dialect) else ids


def _as_json(column: sa.ColumnElement, dialect: str) -> bool:
    return dialect == "sqlite" and isinstance(column.type, sa.String)


def _check(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; use one of: {', '.join(allowed)}")


def _create_engine(url: str) -> sa.Engine:
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
        why = "its port is not a number" if isinstance(exc, ValueError) else str(exc)
        raise ConfigError(f"state store URL {redact(url)!r} is not a valid database URL "
                          f"({why}); use e.g. {DEFAULT_URL} or "
                          "postgresql+psycopg://user:password@host/db") from None
    register_secret(parsed.password)
    sqlite = parsed.get_backend_name() == "sqlite"
    kwargs: dict = {}
    if sqlite:
        kwargs = {"connect_args": {"timeout": 30}}  # wait for another process's write
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (sa.exc.NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConfigError(f"no database driver for state store URL "
                          f"{parsed.render_as_string(hide_password=True)!r} ({exc}); install "
                          "it, e.g. pip install 'crm2erp[postgres]' or 'crm2erp[mysql]'") from None
    if sqlite:
        _sqlite_real_transactions(engine)
    else:
        ping_when_idle(engine)
    return engine


def _sqlite_real_transactions(engine: sa.Engine) -> None:
    """Make SQLite transactions real, as the SQLAlchemy docs recommend.

    The sqlite3 module only BEGINs before DML by itself, so DDL (migrations)
    and leading SELECTs would run outside the transaction. BEGIN IMMEDIATE
    also takes the write lock up front: two processes queue on the busy
    timeout instead of one failing with "database is locked" on upgrade.

    A read (a connection marked :data:`READ_ONLY`, see :meth:`StateStore._reading`)
    BEGINs deferred: it never waits for, nor blocks, another process's write.
    A file database runs in WAL mode with ``synchronous=NORMAL``: readers go on
    beside the writer, and a commit does not wait for the disk (a power cut may
    lose the last batches' state, which the next run syncs again by key).
    """

    in_file = engine.url.database not in (None, "", ":memory:")

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        if in_file:
            try:
                dbapi_connection.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                # another connection holds the file (a migration, or the same switch at
                # once): WAL is kept in the file, the next connection switches it; this
                # one runs in the journal mode the file has
                log.debug("state store stays in its journal mode for now: %s", exc)
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(conn):
        read_only = conn.get_execution_options().get(READ_ONLY)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class StateStore(QualityStoreMixin, DedupeStoreMixin):
    """Persistent state of every flow; see the module docstring."""

    def __init__(self, engine: sa.Engine):
        """Wrap an engine whose database is already migrated; prefer :meth:`open`."""
        self.engine = engine
        self.names = NameIds(engine, self._reading)   # entity and system numbers
        # per-batch look-ups, built once: bind parameters, never values in the statement
        # (SQLAlchemy coerces each value of an ``IN (values)`` anew on every build)
        self._statements: dict[tuple, sa.Select] = {}
        self._rows_written = 0             # xref and canonical rows, for _analyze_grown
        self._next_analyze = _FIRST_ANALYZE

    # -- lifecycle ---------------------------------------------------------
    @classmethod
    def open(cls, url: str | None = None) -> StateStore:
        """Open the store at ``url`` (or ``$CRM2ERP_STATE_URL``, or the default
        SQLite file) and migrate it to the newest schema."""
        url = url or os.environ.get(ENV_URL) or DEFAULT_URL
        engine = _create_engine(url)
        try:
            migrate.upgrade(engine)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            where = engine.url.render_as_string(hide_password=True)
            raise FatalError(f"cannot open the state store at {where}: "
                             f"{redact(str(exc.orig))}; check that the database is "
                             f"reachable and the URL in {ENV_URL} is right") from None
        return cls(engine)

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        """A connection for reads only: on SQLite it takes no write lock."""
        with self.engine.connect() as conn:
            yield conn.execution_options(**{READ_ONLY: True})

    @property
    def url(self) -> str:
        """The database URL with the password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self.url!r})"

    # -- locks -------------------------------------------------------------
    @contextmanager
    def lock(self, flow: str, owner: str | None = None,
             ttl: dt.timedelta | None = None) -> Iterator[str]:
        """Hold ``flow``'s lock for the with-block; yields the owner string.

        ``ttl`` is the lease (default ``$CRM2ERP_LOCK_LEASE`` or 10 minutes).
        A holder that is gone (its process on this host died, or its lease
        expired) is taken over with a warning and its run recorded as
        ``crashed``; a live one raises :class:`crm2erp.errors.LockHeldError`.
        The lock is released even when the block raises.
        """
        owner = locking.acquire(self.engine, flow, owner, ttl)
        try:
            yield owner
        finally:
            locking.release(self.engine, flow, owner)

    def extend_lock(self, flow: str, owner: str, ttl: dt.timedelta | None = None) -> None:
        """Heartbeat of a long run: keep ``flow``'s lock a lease beyond now.

        Raises :class:`crm2erp.errors.FatalError` when the lock was lost (taken
        over after its lease expired, or released by ``crm2erp unlock``), so
        two runs never interleave.
        """
        if not locking.extend(self.engine, flow, owner, ttl):
            raise _lost_lock(flow)

    def lock_holders(self, flow: str | None = None) -> list[locking.Holder]:
        """The held locks of ``flow`` and its partitions, or of every flow."""
        return locking.holders(self.engine, flow)

    def unlock(self, held: locking.Holder, by: str = "crm2erp unlock") -> bool:
        """Release a lock whoever holds it; its running run becomes ``crashed``.
        Returns False when it was already released."""
        return locking.force_release(self.engine, held, by)

    def run_status(self, run: RunRecord) -> str:
        """The run's status, with a ``running`` run whose process is gone (its lock
        is no longer held by a live holder) reported as ``crashed``."""
        if run.status != "running":
            return run.status
        if run.owner is None:   # recorded before runs knew their owner: any live lock
            live = [h for h in self.lock_holders(run.flow) if h.gone() is None]
        else:
            held = locking.holder_of(self.engine, run.owner)
            live = [held] if held is not None and held.gone() is None else []
        return "running" if live else "crashed"

    # -- runs --------------------------------------------------------------
    def start_run(self, flow: str, mode: str, owner: str | None = None) -> int:
        """Record a new running run of ``flow`` by lock ``owner``; returns its id."""
        _check(mode, RUN_MODES, "run mode")
        with self.engine.begin() as conn:
            result = conn.execute(runs.insert().values(
                flow=flow, mode=mode, status="running", started_at=utcnow(), owner=owner))
            return inserted_id(result)

    def finish_run(self, run_id: int, status: str, message: str | None = None,
                   warnings: list[str] | None = None) -> None:
        """Close a run with its final status, an optional (redacted) message and its
        warnings (kept one per line)."""
        _check(status, RUN_STATUSES, "run status")
        with self.engine.begin() as conn:
            done = conn.execute(runs.update().where(runs.c.id == run_id).values(
                status=status, finished_at=utcnow(),
                message=None if message is None else redact(message),
                warnings="\n".join(redact(w).replace("\n", " ") for w in warnings)
                if warnings else None))
        if done.rowcount != 1:
            raise ConfigError(f"no run #{run_id}")

    def get_run(self, run_id: int) -> RunRecord:
        """The run ``run_id``; ConfigError when there is none."""
        with self._reading() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise ConfigError(f"no run #{run_id}; see the run history for valid ids")
        return RunRecord(**row._asdict())

    def list_runs(self, flow: str | None = None, limit: int = 20) -> list[RunRecord]:
        """The latest runs, newest first, of one flow or of all."""
        query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
        if flow is not None:
            query = query.where(runs.c.flow == flow)
        with self._reading() as conn:
            return [RunRecord(**row._asdict()) for row in conn.execute(query)]

    # -- watermarks --------------------------------------------------------
    def get_watermark(self, flow: str, stream: str) -> Cursor | None:
        """Where the last committed batch of ``flow``/``stream`` ended, if anywhere."""
        with self._reading() as conn:
            row = conn.execute(sa.select(watermarks.c.value, watermarks.c.key).where(
                watermarks.c.flow == flow, watermarks.c.stream == stream)).first()
        return None if row is None else Cursor(jsonutil.loads(row.value), row.key)

    def reset_watermark(self, flow: str, stream: str | None = None) -> int:
        """Forget the watermark of one stream (or all of ``flow``'s); returns how many."""
        query = watermarks.delete().where(watermarks.c.flow == flow)
        if stream is not None:
            query = query.where(watermarks.c.stream == stream)
        with self.engine.begin() as conn:
            return conn.execute(query).rowcount

    # -- xref reads --------------------------------------------------------
    def xref_entries(self, entity: str, system: str,
                     external_ids: Iterable[str]) -> dict[str, XrefEntry]:
        """The cross-reference entries of these external ids (missing ones left out)."""
        found: dict[str, XrefEntry] = {}
        entity_id, system_id = self.names.known(entity), self.names.known(system)
        if entity_id is None or system_id is None:
            return found
        query = self._xref_query(entity_id, system_id)
        with self._reading() as conn:
            for chunk in _chunks(external_ids):
                for row in conn.execute(query.where(xref.c.external_id.in_(chunk))):
                    found[row.external_id] = XrefEntry(entity, system, *row)
        return found

    def xref_by_canonical(self, entity: str, system: str,
                          canonical_ids: Iterable[str]) -> dict[str, XrefEntry]:
        """Canonical id -> entry. When a dedupe merge gave one canonical id two
        external ids in ``system``, the greater external id wins (the store keeps no
        write times since migration 0014)."""
        found: dict[str, XrefEntry] = {}
        entity_id, system_id = self.names.known(entity), self.names.known(system)
        if entity_id is None or system_id is None:
            return found
        dialect = self.engine.dialect.name
        stmt = self._statements.get(("xref_by_canonical",))
        if stmt is None:
            stmt = self._statements[("xref_by_canonical",)] = (
                self._xref_query(sa.bindparam("entity"), sa.bindparam("system"))
                .where(_one_of(xref.c.canonical_id, dialect))
                .order_by(xref.c.external_id))
        with self._reading() as conn:
            for chunk in _chunks(canonical_ids):
                ids = _one_of_value(chunk, xref.c.canonical_id, dialect)
                for row in conn.execute(stmt, {"entity": entity_id, "system": system_id,
                                               "ids": ids}):
                    found[row.canonical_id] = XrefEntry(entity, system, *row)
        return found

    def canonical_states(self, entity: str,
                         canonical_ids: Iterable[str]) -> dict[str, CanonicalState]:
        """Canonical id -> last canonical state, for the ids that have one."""
        found: dict[str, CanonicalState] = {}
        entity_id = self.names.known(entity)
        canonical_ids = list(canonical_ids)
        if entity_id is None or not canonical_ids:   # no connection taken for nothing
            return found
        dialect, column = self.engine.dialect.name, canonical_records.c.canonical_id
        stmt = self._statements.get(("canonical_states",))
        if stmt is None:
            stmt = self._statements[("canonical_states",)] = sa.select(canonical_records).where(
                canonical_records.c.entity_id == sa.bindparam("entity"),
                _one_of(column, dialect))
        with self._reading() as conn:
            for chunk in _chunks(canonical_ids):
                ids = _one_of_value(chunk, column, dialect)
                for row in conn.execute(stmt, {"entity": entity_id, "ids": ids}):
                    found[row.canonical_id] = CanonicalState(
                        entity, row.canonical_id, *fieldmemory.decode(row.memory))
        return found

    def list_conflicts(self, flow: str | None = None, limit: int = 100) -> list[dict]:
        """Logged conflicts, newest first."""
        query = sa.select(conflicts).order_by(conflicts.c.id.desc()).limit(limit)
        if flow is not None:
            query = query.where(conflicts.c.flow == flow)
        with self._reading() as conn:
            return [{**row._asdict(), "incoming": jsonutil.loads(row.incoming),
                     "kept": jsonutil.loads(row.kept)} for row in conn.execute(query)]

    def canonical_ids(self, entity: str, system: str,
                      external_ids: Iterable[str]) -> dict[str, str]:
        """External id -> canonical id, for the ids that have one."""
        return {ext: cid for ext, (cid, _) in self.xref_hashes(entity, system,
                                                                external_ids).items()}

    def xref_hashes(self, entity: str, system: str,
                    external_ids: Iterable[str]) -> dict[str, tuple[str, str | None]]:
        """External id -> (canonical id, payload hash), for the ids that have an entry:
        what a batch's look-up of its source records needs, without converting the
        other columns (half the cost of :meth:`xref_entries`)."""
        return {ext: (cid, hashed) for ext, (cid, hashed, _) in self._xref_lookup(
            entity, system, None, external_ids).items()}

    def sync_hashes(self, entity: str, system: str, flow: str,
                    external_ids: Iterable[str]) -> dict[str, tuple[str, str | None, bool]]:
        """External id -> (canonical id, payload hash, held), for the ids that have an
        entry; ``held``: the id has an open, parked or retrying dead letter in ``flow``
        (as a source key). A sync batch's look-up of its source records, one query
        per thousand ids."""
        return self._xref_lookup(entity, system, flow, external_ids)

    def _xref_lookup(self, entity: str, system: str, flow: str | None,
                     external_ids: Iterable[str]) -> dict[str, tuple[str, str | None, bool]]:
        dialect = self.engine.dialect.name
        entity_id, system_id = self.names.known(entity), self.names.known(system)
        external_ids = list(external_ids)
        if entity_id is None or system_id is None or not external_ids:
            return {}
        stmt = self._statements.get(("xref_lookup", flow is None))
        if stmt is None:
            held: sa.ColumnElement = sa.false()
            if flow is not None:
                held = sa.exists().where(
                    dead_letters.c.flow == sa.bindparam("flow"),
                    dead_letters.c.source_key == xref.c.external_id,
                    dead_letters.c.status.in_(ACTIVE_DEAD_LETTER_STATUSES))
            stmt = self._statements[("xref_lookup", flow is None)] = sa.select(
                xref.c.external_id, xref.c.canonical_id, xref.c.payload_hash, held.label("held")
            ).where(xref.c.entity_id == sa.bindparam("entity"),
                    xref.c.system_id == sa.bindparam("system"),
                    _one_of(xref.c.external_id, dialect))
        found: dict[str, tuple[str, str | None, bool]] = {}
        params: dict[str, int | str | list[str] | None] = {
            "entity": entity_id, "system": system_id, "flow": flow}
        with self._reading() as conn:
            for chunk in _chunks(external_ids):
                params["ids"] = _one_of_value(chunk, xref.c.external_id, dialect)
                found.update((ext, (cid, hashed, bool(held_)))   # fetched at once
                             for ext, cid, hashed, held_ in conn.execute(stmt, params).all())
        return found

    def external_ids(self, entity: str, system: str,
                     canonical_ids: Iterable[str]) -> dict[str, str]:
        """Canonical id -> external id in ``system``, for the ids that have one."""
        return {can: entry.external_id
                for can, entry in self.xref_by_canonical(entity, system, canonical_ids).items()}

    def xref_count(self, entity: str | None = None, system: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(xref)
        for column, name in ((xref.c.entity_id, entity), (xref.c.system_id, system)):
            if name is not None:
                number = self.names.known(name)
                if number is None:
                    return 0
                query = query.where(column == number)
        with self._reading() as conn:
            return int(conn.execute(query).scalar_one())

    @staticmethod
    def _xref_query(entity_id: int | sa.BindParameter, system_id: int | sa.BindParameter
                    ) -> sa.Select:
        """The entries' columns after entity and system in :class:`XrefEntry`'s order:
        ``XrefEntry(entity, system, *row)``."""
        return sa.select(xref.c.external_id, xref.c.canonical_id, xref.c.payload_hash
                         ).where(xref.c.entity_id == entity_id, xref.c.system_id == system_id)

    # -- dead letters ------------------------------------------------------
    @staticmethod
    def _dead_letter_filter(query, flow: str | None, status: str | Sequence[str] | None):
        if flow is not None:
            query = query.where(dead_letters.c.flow == flow)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            for one in statuses:
                _check(one, DEAD_LETTER_STATUSES, "dead letter status")
            query = query.where(dead_letters.c.status.in_(statuses))
        return query

    @staticmethod
    def _dead_letter(row) -> DeadLetter:
        values = row._asdict()
        values["payload"] = jsonutil.loads(values["payload"])
        return DeadLetter(**values)

    def dead_letters(self, flow: str | None = None,
                     status: str | Sequence[str] | None = "open",
                     limit: int = 100) -> list[DeadLetter]:
        """Dead letters, oldest first; ``status=None`` means any status."""
        query = self._dead_letter_filter(
            sa.select(dead_letters).order_by(dead_letters.c.id).limit(limit), flow, status)
        with self._reading() as conn:
            return [self._dead_letter(row) for row in conn.execute(query)]

    def get_dead_letter(self, dead_letter_id: int) -> DeadLetter:
        """One dead letter by id; ConfigError when there is none."""
        with self._reading() as conn:
            row = conn.execute(sa.select(dead_letters)
                               .where(dead_letters.c.id == dead_letter_id)).first()
        if row is None:
            raise ConfigError(f"no dead letter #{dead_letter_id}")
        return self._dead_letter(row)

    def set_dead_letter_status(self, ids: Sequence[int], status: str) -> int:
        """Set the status of these dead letters; returns how many exist."""
        _check(status, DEAD_LETTER_STATUSES, "dead letter status")
        if not ids:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(dead_letters.update()
                                .where(dead_letters.c.id.in_(list(ids)))
                                .values(status=status, updated_at=utcnow())).rowcount

    def count_dead_letters(self, flow: str | None = None,
                           status: str | Sequence[str] | None = "open") -> int:
        query = self._dead_letter_filter(
            sa.select(sa.func.count()).select_from(dead_letters), flow, status)
        with self._reading() as conn:
            return int(conn.execute(query).scalar_one())

    # -- the batch write path ---------------------------------------------
    def commit_batch(self, batch: BatchCommit,
                     lock: tuple[str, str] | None = None) -> BatchResult:
        """Write one batch's xref, dead letters, resolutions, watermark and
        counters in ONE transaction: all of it or, on any error, none.

        ``lock`` (flow, owner): the run's lock, renewed in the same transaction (the
        heartbeat, :meth:`extend_lock`). The batch's writes to the target happened
        already, so a lost lock still commits what the batch did, then raises
        :class:`~crm2erp.errors.FatalError`, and the run stops."""
        numbers = self.names.ids({name for u in batch.xref for name in (u.entity, u.system)}
                                 | {c.entity for c in batch.canonical})
        with self.engine.begin() as conn:
            result = write_batch(conn, batch, numbers)
            lost = lock is not None and not locking.extend_on(conn, *lock)
        self._analyze_grown(len(batch.xref) + len(batch.canonical))
        if lock is not None and lost:
            raise _lost_lock(lock[0])
        return result

    def _analyze_grown(self, written: int) -> None:
        """PostgreSQL and SQLite plan the batch look-ups from the tables' statistics.
        Tables that grew from empty have none (PostgreSQL: until autovacuum comes
        round, never when it is off; SQLite: until an ANALYZE), and without them the
        planner may walk every xref row of the entity and system for each batch
        (PostgreSQL in the canonical-id index, SQLite in the primary key). So the
        state tables are ANALYZEd each time the rows this store wrote pass a power of
        ten (1,000, 10,000, ...): a few ANALYZEs per run, PostgreSQL's reading a
        bounded sample. SQLite's read every row (0.05 s CPU at 100k records): one
        limited to a sample (``analysis_limit``) counted 1,001 rows for an (entity,
        system), and the planner walked them rather than look 500 ids up."""
        dialect = self.engine.dialect.name
        if dialect not in ("postgresql", "sqlite") or not written:
            return
        self._rows_written += written
        if self._rows_written < self._next_analyze:
            return
        while self._next_analyze <= self._rows_written:
            self._next_analyze *= 10
        with self.engine.connect() as conn:
            if dialect == "postgresql":
                conn.exec_driver_sql("ANALYZE xref, canonical_records, dead_letters")
            else:
                for table in ("xref", "canonical_records", "dead_letters"):
                    conn.exec_driver_sql(f"ANALYZE {table}")
            conn.commit()


def _lost_lock(flow: str) -> FatalError:
    return FatalError(f"flow {flow!r}: this run lost its lock (its lease expired and "
                      "another run took it over, or `crm2erp unlock` released it); "
                      "stopping so the two do not interleave")

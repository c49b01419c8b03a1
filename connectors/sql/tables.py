"""Engine, table reflection and stream resolution shared by the read and write sides.

Streams are resolved lazily against the live schema (reflection), so a
typo in a table or column name is reported by ``check()`` with the name at
fault, and the URL's password never appears in any message.
"""

from __future__ import annotations

__all__ = ["ChildSpec", "SqlBase", "StreamSpec", "db_error_text"]

import datetime as dt
import logging
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from crm2erp.connectors.base import Connector, StreamInfo
from crm2erp.connectors.cursortype import CursorType
from crm2erp.connectors.sql.config import ArchiveConfig, SqlConfig, SqlStreamConfig
from crm2erp.connectors.sql.values import column_kind
from crm2erp.errors import ConfigError, FatalError, RetriableError
from crm2erp.redact import redact
from crm2erp.store.pinging import ping_when_idle

log = logging.getLogger(__name__)

#: The cursor type a column's declared SQL type gives (text and others: none).
_NATURAL = {"datetime": "timestamp", "date": "date", "integer": "integer",
            "decimal": "number", "float": "number"}
_GROUPS = {"timestamp": "time", "date": "time", "integer": "number", "number": "number",
           "string": "text"}


def db_error_text(exc: BaseException) -> str:
    """The first line of a database error, without the SQL and without secrets."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return redact(first)


def is_disconnect(exc: BaseException) -> bool:
    """True when the error means the connection is gone (worth a retry later)."""
    return bool(getattr(exc, "connection_invalidated", False)) or isinstance(
        exc, sa.exc.InterfaceError | sa.exc.DisconnectionError | sa.exc.TimeoutError)


@dataclass
class ChildSpec:
    name: str
    table: sa.Table
    foreign_key: str
    key: list[str]


@dataclass
class StreamSpec:
    """A configured stream bound to its reflected table(s)."""

    name: str
    table: sa.Table
    key: list[str]
    id_column: str
    cursor: str | None = None
    cursor_mode: str = "none"  # none | db | scan | untyped (see SqlBase._cursor_typing)
    cursor_type: CursorType | None = None
    cursor_problem: str | None = None
    children: list[ChildSpec] = field(default_factory=list)
    archive: ArchiveConfig | None = None
    soft_delete: str | None = None

    def key_columns(self) -> list[sa.Column]:
        return [self.table.c[k] for k in self.key]

    def cursor_expr(self):
        """What rows are compared and ordered by in the database (``db`` mode)."""
        return self.table.c[self.cursor]


class SqlBase(Connector):
    """Lazily created engine plus cached reflection of the configured tables."""

    name = "sql"
    Config = SqlConfig

    def __init__(self, config: SqlConfig):
        super().__init__(config)
        self.config: SqlConfig = config
        self.tz: dt.tzinfo = zoneinfo.ZoneInfo(config.timezone)
        self._engine: sa.Engine | None = None
        self._metadata = sa.MetaData(schema=config.db_schema)
        self._specs: dict[str, StreamSpec] = {}
        self._configs: dict[str, SqlStreamConfig] | None = config.streams
        self._declared: dict[str, CursorType] = {}

    # -- engine -----------------------------------------------------------
    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            engine = sa.create_engine(self.config.sa_url,
                                      connect_args=_driver_args(self.config.sa_url))
            if engine.dialect.name == "sqlite":
                _enable_sqlite_savepoints(engine)
            else:
                ping_when_idle(engine)
            self._engine = engine
        return self._engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _unreachable(self, exc: BaseException) -> RetriableError:
        return RetriableError(
            f"database {self.config.safe_url} is unreachable: {db_error_text(exc)}")

    # -- streams ----------------------------------------------------------
    def stream_configs(self) -> dict[str, SqlStreamConfig]:
        """Configured streams, or one per table with a primary key when none are."""
        if self._configs is None:
            try:
                inspector = sa.inspect(self.engine)
                names = inspector.get_table_names(schema=self.config.db_schema)
                found = {}
                for table in names:
                    pk = inspector.get_pk_constraint(table, schema=self.config.db_schema)
                    columns = pk.get("constrained_columns") or []
                    if columns:
                        found[table] = SqlStreamConfig(table=table, key=list(columns))
                    else:
                        log.warning("table %s has no primary key; not offered as a stream",
                                    table)
            except sa.exc.OperationalError as exc:
                raise self._unreachable(exc) from None
            self._configs = found
        return self._configs

    def streams(self) -> list[StreamInfo]:
        return [StreamInfo(name=name, key=tuple(cfg.key_columns), cursor_field=cfg.cursor,
                           children=tuple(cfg.children),
                           id_field=(cfg.id_column if cfg.id_column
                                     and [cfg.id_column] != list(cfg.key_columns) else None),
                           delete_modes=("delete", "archive") if cfg.archive else ("delete",))
                for name, cfg in self.stream_configs().items()]

    def stream_fields(self, name: str, *, reflect: bool = False) -> tuple[str, ...]:
        """With ``reflect``: the table's columns and the stream's children, from the
        live database (a SQLite file that does not exist is unreachable, not created)."""
        if not reflect:
            return super().stream_fields(name)
        url = self.config.sa_url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
                and not url.database.startswith("file:") and not Path(url.database).is_file():
            raise RetriableError(f"database file {url.database} does not exist")
        spec = self.spec(name)
        return tuple(spec.table.c.keys()) + tuple(c.name for c in spec.children)

    def spec(self, stream: str) -> StreamSpec:
        """The stream bound to its tables; ConfigError naming any missing table/column."""
        if stream not in self._specs:
            configs = self.stream_configs()
            if stream not in configs:
                known = ", ".join(sorted(configs)) or "none"
                raise ConfigError(f"sql connection has no stream {stream!r} (streams: {known})")
            self._specs[stream] = self._resolve(stream, configs[stream])
        return self._specs[stream]

    def _reflect(self, name: str, stream: str) -> sa.Table:
        key = f"{self.config.db_schema}.{name}" if self.config.db_schema else name
        if key in self._metadata.tables:
            return self._metadata.tables[key]
        try:
            return sa.Table(name, self._metadata, autoload_with=self.engine)
        except sa.exc.NoSuchTableError:
            where = f" in schema {self.config.db_schema!r}" if self.config.db_schema else ""
            raise ConfigError(
                f"stream {stream!r}: table {name!r} does not exist{where} in database "
                f"{self.config.safe_url}; fix the stream's 'table:' setting "
                "or create the table") from None
        except sa.exc.OperationalError as exc:
            raise self._unreachable(exc) from None

    @staticmethod
    def _need(table: sa.Table, column: str | None, stream: str, setting: str) -> None:
        if column is not None and column not in table.c:
            raise ConfigError(
                f"stream {stream!r}: column {column!r} ({setting}) does not exist in table "
                f"{table.name!r}; columns are: {', '.join(table.c.keys())}")

    def _resolve(self, stream: str, cfg: SqlStreamConfig) -> StreamSpec:
        table = self._reflect(cfg.table, stream)
        for key in cfg.key_columns:
            self._need(table, key, stream, "key")
        id_column = cfg.id_column or cfg.key_columns[0]
        if cfg.id_column is None and len(cfg.key_columns) > 1:
            id_column = ""  # composite key: target_id is the joined key
        self._need(table, id_column or None, stream, "id_column")
        self._need(table, cfg.cursor, stream, "cursor")
        self._need(table, cfg.soft_delete_column, stream, "soft_delete_column")
        self._need(table, cfg.archive.column if cfg.archive else None, stream, "archive.column")
        children = []
        for child_name, child in cfg.children.items():
            child_table = self._reflect(child.table, stream)
            self._need(child_table, child.foreign_key, stream, f"children.{child_name}.foreign_key")
            for key in child.key_columns:
                self._need(child_table, key, stream, f"children.{child_name}.key")
            children.append(ChildSpec(child_name, child_table, child.foreign_key,
                                      child.key_columns))
        spec = StreamSpec(name=stream, table=table, key=cfg.key_columns, id_column=id_column,
                          cursor=cfg.cursor, children=children, archive=cfg.archive,
                          soft_delete=cfg.soft_delete_column)
        if cfg.cursor:
            spec.cursor_mode, spec.cursor_type, spec.cursor_problem = self._cursor_typing(
                stream, table, cfg.cursor)
        return spec

    def declare_cursor(self, stream: str, cursor: CursorType) -> None:
        self._declared[stream] = cursor
        self._specs.pop(stream, None)

    def check_cursor(self, stream: str) -> None:
        spec = self.spec(stream)
        if spec.cursor_mode == "untyped":
            raise ConfigError(spec.cursor_problem)

    def _cursor_typing(self, stream: str, table: sa.Table, column: str
                       ) -> tuple[str, CursorType | None, str | None]:
        """``(mode, type, problem)`` of a cursor column, from its declared SQL type.

        ``db``: compared and ordered by the database (a typed column on a server
        that enforces its type). ``scan``: read and parsed by us, values that do
        not parse rejected (every SQLite column, which may hold anything, and
        text columns with a type declared by the flow). ``untyped``: a text
        column without a declared type; reading it is a configuration error.
        """
        col = table.c[column]
        natural = _NATURAL.get(column_kind(col.type))
        declared = self._declared.get(stream)
        if declared is not None and declared.type == "auto":
            declared = None
        where = f"stream {stream!r}: cursor column {column!r} of table {table.name!r}"
        if declared is not None and natural is not None:
            if _GROUPS[declared.type] != _GROUPS[natural]:
                raise ConfigError(f"{where} is {col.type} ({natural}); the flow declares "
                                  f"type: {declared.type}. Declare type: {natural} or leave "
                                  "type: out")
            if declared.format and self.dialect != "sqlite":
                raise ConfigError(f"{where} is {col.type}, whose values the database "
                                  "parses; 'format:' only applies to text columns")
        if natural is not None and self.dialect != "sqlite":
            return "db", CursorType(natural), None
        if declared is not None:
            return "scan", declared, None
        if natural is not None:
            return "scan", CursorType(natural), None
        return "untyped", None, (
            f"{where} is {col.type}, a text column: its values would be compared as text "
            "('n/a' after every date). Declare how to read them in the flow, e.g. "
            f"incremental: {{cursor: {column}, type: timestamp}} (or type: date, integer, "
            "number, string; format: '%m/%d/%Y %H:%M' for timestamps that are not "
            "ISO-8601), or make the column a timestamp/number column")

    # -- check ------------------------------------------------------------
    def check(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.DBAPIError as exc:
            raise FatalError(f"cannot connect to database {self.config.safe_url}: "
                             f"{db_error_text(exc)}") from None
        for name in self.stream_configs():
            spec = self.spec(name)
            problem = self.unique_key_problem(spec)
            if problem:
                log.warning("%s (reading works; upserts into it will fail)", problem)

    def unique_key_problem(self, spec: StreamSpec) -> str | None:
        """A message when the key has no primary key/unique constraint to upsert on."""
        inspector = sa.inspect(self.engine)
        table, schema = spec.table.name, self.config.db_schema
        wanted = set(spec.key)
        sets = [set(inspector.get_pk_constraint(table, schema=schema)
                    .get("constrained_columns") or [])]
        sets += [set(u["column_names"]) for u in inspector.get_unique_constraints(
            table, schema=schema)]
        sets += [set(i["column_names"]) for i in inspector.get_indexes(table, schema=schema)
                 if i.get("unique")]
        if self.engine.dialect.name == "sqlite":
            sets += _sqlite_unique_sets(self.engine, table, schema)
        if wanted in sets:
            return None
        cols = ", ".join(spec.key)
        return (f"stream {spec.name!r}: table {table!r} has no primary key or unique "
                f"constraint on ({cols}); upsert needs one, e.g. CREATE UNIQUE INDEX "
                f"ux_{table}_{'_'.join(spec.key)} ON {table} ({cols})")


def _sqlite_unique_sets(engine: sa.Engine, table: str, schema: str | None) -> list[set[str]]:
    """The column sets of every unique index SQLite has on ``table``, including the
    automatic ones behind a column-level ``UNIQUE`` (which reflection leaves out)."""
    prefix = f'"{schema}".' if schema else ""
    with engine.connect() as conn:
        indexes = conn.exec_driver_sql(f'PRAGMA {prefix}index_list("{table}")').fetchall()
        return [{col[2] for col in conn.exec_driver_sql(
                    f'PRAGMA {prefix}index_info("{index[1]}")').fetchall()}
                for index in indexes if index[2]]


def _driver_args(url) -> dict:
    """The DB-API connection arguments of a connector's engine.

    psycopg (3) turns a statement run five times into a server-side prepared statement
    whose generic plan PostgreSQL keeps until the table is analysed again. A look-up by
    key planned while the target table was still empty is a sequential scan, and without
    autovacuum it stays one while the table grows: a first sync of 100k rows got slower
    with every batch (quadratic). Planned on each execution instead, the look-up uses the
    key's unique index whatever the table's statistics."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "psycopg":
        return {"prepare_threshold": None}
    return {}


def _enable_sqlite_savepoints(engine: sa.Engine) -> None:
    """Let SQLAlchemy, not pysqlite, emit BEGIN, so SAVEPOINTs work on Python 3.11."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN")

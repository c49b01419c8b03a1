"""Read side of the SQL connector: incremental keyset reads and lookups.

Pages are fetched with keyset pagination on ``(cursor, key)`` - never
OFFSET - so rows sharing one timestamp across a page boundary are each
read exactly once, and concurrent inserts cannot shift a page. Each page
uses its own short connection: nothing is held open while the engine
writes the batch to the target.
"""

from __future__ import annotations

__all__ = ["SqlSourceMixin"]

import datetime as dt
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm2erp.connectors.base import Batch, Cursor, Rejected, Row
from crm2erp.connectors.cursortype import cursor_json, parse_cursor, parse_watermark
from crm2erp.connectors.file import spill  # the file source's external sort
from crm2erp.connectors.sql.tables import SqlBase, StreamSpec, is_disconnect
from crm2erp.connectors.sql.values import (
    column_kind,
    from_db,
    parse_datetime,
    split_key,
    to_db,
)
from crm2erp.connectors.sql.values import cursor_json as value_json
from crm2erp.contract import key_text
from crm2erp.errors import ConfigError
from crm2erp.store.types import one_of_values

_CURSOR = "__crm2erp_cursor"
_SCAN_PAGE = 5000
_SCAN_RUNS = 2   # a scan's spill runs are this many times a file source's
_FALSY = (None, False, 0, "", "0", "false", "False", "f", "N", "n")
#: Types of fetched values :func:`from_db` leaves as they are (only datetimes change).
_AS_READ = frozenset({type(None), int, float, bool, Decimal, bytes, dt.date})


def _json_key(key: tuple) -> bool:
    """Whether a one-column key's value is the same value read back from JSON by SQLite's
    ``json_each``: text, or an integer within 64 bits."""
    value = key[0]
    return type(value) is str or (type(value) is int and -2**63 <= value < 2**63)


def _key_after(columns: list[sa.Column], values: Sequence[Any]):
    if len(columns) == 1:
        return columns[0] > values[0]
    return sa.tuple_(*columns) > sa.tuple_(*values)


class SqlSourceMixin(SqlBase):
    # -- row conversion (shared with the write side) -----------------------
    def select_columns(self, table: sa.Table) -> list:
        """Columns to select; SQLite timestamps as text, parsed leniently by us."""
        if self.dialect != "sqlite":
            return list(table.c)
        return [sa.type_coerce(c, sa.String).label(c.name)
                if column_kind(c.type) == "datetime" else c for c in table.c]

    def rows_of(self, table: sa.Table, fetched: Iterable[Sequence[Any]]) -> list[Row]:
        """Fetched tuples (``select_columns(table)`` first, in order) as the engine's rows:
        text in a timestamp column parsed (kept as text when it does not parse), naive
        timestamps made aware (:func:`from_db`). Only the columns whose type may hold a
        timestamp are looked at; the others' values are taken as the driver gives them
        (:func:`from_db` would leave them as they are)."""
        names, convert = self._row_shape(table)
        tz = self.tz
        rows = []
        for values in fetched:
            row = dict(zip(names, values, strict=False))   # a page's cursor column last
            for name, is_datetime in convert:
                value = row[name]
                kind = type(value)
                if kind is str:
                    if is_datetime:
                        try:
                            row[name] = parse_datetime(value, tz)   # aware already
                        except ValueError:
                            pass
                elif kind not in _AS_READ:
                    row[name] = from_db(value, tz)
            rows.append(row)
        return rows

    def _row_shape(self, table: sa.Table) -> tuple[tuple[str, ...], tuple[tuple[str, bool], ...]]:
        """The table's column names, and ``(name, is_datetime)`` of the columns that may
        need converting: worked out once per table, not per value."""
        cache = self.__dict__.setdefault("_row_shapes", {})
        shape = cache.get(table)
        if shape is None:
            kinds = [(c.name, column_kind(c.type)) for c in table.c]
            shape = cache[table] = (
                tuple(name for name, _ in kinds),
                tuple((name, kind == "datetime") for name, kind in kinds
                      if kind in ("datetime", "other")))
        return shape

    def key_values(self, spec: StreamSpec, key: str) -> tuple:
        """A key string turned into typed values of the key columns (ValueError if not)."""
        parts = split_key(key, len(spec.key))
        return tuple(to_db(c.type, p, self.tz, self.dialect)
                     for c, p in zip(spec.key_columns(), parts, strict=True))

    def key_filter(self, spec: StreamSpec, keys: Sequence[tuple]):
        columns = spec.key_columns()
        if len(columns) == 1:
            return columns[0].in_([k[0] for k in keys])
        return sa.tuple_(*columns).in_(keys)

    def load_children(self, conn: sa.Connection, spec: StreamSpec,
                      rows: list[Row]) -> None:
        """Embed each child list under its name, one query per child table per batch."""
        if not spec.children or not rows:
            return
        parents = [row[spec.key[0]] for row in rows]
        for child in spec.children:
            table = child.table
            fk = table.c[child.foreign_key]
            found: dict[str, list[Row]] = {}
            stmt = (sa.select(*self.select_columns(table)).where(fk.in_(parents))
                    .order_by(fk, *[table.c[k] for k in child.key]))
            for child_row in self.rows_of(table, conn.execute(stmt).all()):
                found.setdefault(str(child_row[child.foreign_key]), []).append(child_row)
            for row in rows:
                row[child.name] = found.get(str(row[spec.key[0]]), [])

    # -- read -------------------------------------------------------------
    def read(self, stream: str, since: Cursor | None = None, *,
             batch_size: int = 500) -> Iterator[Batch]:
        """Rows with ``cursor >= since.value`` in ``(cursor, key)`` order, a page per batch.

        Rows whose cursor is NULL cannot be placed on the time line: they are
        read first on full reads (``since`` is None), with ``Batch.cursor``
        None so no watermark is stored for them, and never on incremental reads.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        spec = self.spec(stream)
        if spec.cursor_mode == "untyped":
            raise ConfigError(spec.cursor_problem)
        try:
            if spec.cursor is None:
                yield from self._pages(spec, batch_size, None, None, timeline=False)
                return
            if spec.cursor_mode == "scan":
                yield from self._scan(spec, batch_size, since)
                return
            column = spec.table.c[spec.cursor]
            if since is None or since.value is None:
                yield from self._pages(spec, batch_size, None, column.is_(None),
                                       timeline=False)
            bound = None
            if since is not None and since.value is not None:
                bound = self._since_param(spec, since.value)
            yield from self._pages(spec, batch_size, bound, column.is_not(None),
                                   timeline=True)
        except sa.exc.DBAPIError as exc:
            if is_disconnect(exc) or isinstance(exc, sa.exc.OperationalError):
                raise self._unreachable(exc) from None
            raise

    def _since_param(self, spec: StreamSpec, value: Any) -> Any:
        """``since.value`` (JSON) in the type of the cursor column (``db`` mode)."""
        try:
            return to_db(spec.table.c[spec.cursor].type, value, self.tz, self.dialect)
        except ValueError as exc:
            raise ConfigError(f"stream {spec.name!r}: watermark {value!r} does not fit "
                              f"cursor column {spec.cursor!r}: {exc}") from None

    # -- scan mode: cursors parsed by us -----------------------------------
    def _scan(self, spec: StreamSpec, batch_size: int, since: Cursor | None
              ) -> Iterator[Batch]:
        """Every row's key and cursor read in key order and parsed as the cursor's type;
        rows at or after ``since`` then fetched by key in ``(parsed cursor, key)`` order.

        A value that does not parse is rejected (table and key named), never ordered.
        """
        ctype = spec.cursor_type
        floor = None
        if since is not None and since.value is not None:
            try:
                floor = parse_watermark(since.value, ctype, self.tz)
            except ValueError as exc:
                raise ConfigError(
                    f"stream {spec.name!r}: the watermark {since.value!r} is not a cursor of "
                    f"type {ctype.type} ({exc}); start again with `crm2erp sync run FLOW "
                    "--full-refresh` or `--since DATE`") from None
        # (cursor, key) of every row to read, sorted (on disk beyond a run): a few small
        # objects each, where a file source's items hold whole rows, so longer runs
        placed = spill.SortedSpill(run_size=spill.RUN_SIZE * _SCAN_RUNS)
        try:
            nulls, bad = self._scan_cursors(spec, ctype, floor, placed)
            pending = bad
            if since is None or since.value is None:
                for start in range(0, len(nulls), batch_size):
                    rows = self._rows_by_key(spec, nulls[start:start + batch_size])
                    yield self._batch(spec, rows, None, self._rejected(spec, pending))
                    pending = []
            ordered = iter(placed)
            while chunk := list(itertools.islice(ordered, batch_size)):
                rows = self._rows_by_key(spec, [key for _, key, _ in chunk])
                order, key, _ = chunk[-1]
                cursor = Cursor(cursor_json(order), key_text(key))
                yield self._batch(spec, rows, cursor, self._rejected(spec, pending))
                pending = []
            if pending:
                yield Batch(rows=[], rejected=self._rejected(spec, pending))
        finally:
            placed.close()

    def _scan_cursors(self, spec: StreamSpec, ctype, floor, placed: spill.SortedSpill):
        keys = spec.key_columns()
        column = spec.table.c[spec.cursor]
        if self.dialect == "sqlite":   # raw stored value, whatever the column's type
            column = sa.type_coerce(column, sa.String)
        nulls: list[tuple] = []
        bad: list[tuple[tuple, str]] = []
        last: tuple | None = None
        while True:
            stmt = sa.select(*keys, column.label(_CURSOR)).order_by(*keys).limit(_SCAN_PAGE)
            if last is not None:
                stmt = stmt.where(_key_after(keys, last))
            with self.engine.connect() as conn:
                fetched = conn.execute(stmt).all()
            for record in fetched:
                key, value = tuple(record[:-1]), record[-1]
                if value is None:
                    nulls.append(key)
                    continue
                try:
                    order = parse_cursor(value, ctype, self.tz)
                except ValueError as exc:
                    bad.append((key, f"cursor {spec.cursor!r} ({ctype.describe()}): {exc}"))
                    continue
                if floor is None or order >= floor:
                    placed.add((order, key, None))
            if len(fetched) < _SCAN_PAGE:
                return nulls, bad
            last = tuple(fetched[-1][:-1])

    def _rows_by_key(self, spec: StreamSpec, keys: Sequence[tuple]) -> list[Row]:
        """Full rows (children embedded) of ``keys``, in that order; vanished keys left out."""
        found = self._fetch_by_key(spec, keys)
        wanted = [key_text(key) for key in keys]
        return [found[k] for k in wanted if k in found]

    def by_keys(self, spec: StreamSpec, keys: Sequence[tuple], what: str = "rows"
                ) -> tuple[sa.Select, dict[str, Any]]:
        """A SELECT of the rows of ``spec``'s table whose key is one of the typed ``keys``
        (``what``: "rows", every column as :meth:`select_columns`; "ids", the key columns
        and the id column), built once per table, key and ``what``, and its parameters.
        The values of a one-column key go as one JSON array on SQLite (text or integer
        values, ``json_each``) and as one array on PostgreSQL (``= ANY``): the
        statement's text is then the same for any keys, where an expanding ``IN`` is
        rendered again for each call (and, over 4 KB, parsed again by psycopg)."""
        statements = self.__dict__.setdefault("_by_key_statements", {})
        single = len(spec.key) == 1
        as_json = single and self.dialect == "sqlite" and all(map(_json_key, keys))
        shape = (spec.table, tuple(spec.key), as_json, what)
        stmt = statements.get(shape)
        if stmt is None:
            columns = spec.key_columns()
            keyed = columns[0] if single else sa.tuple_(*columns)
            if as_json:
                listed = sa.func.json_each(sa.bindparam("keys", type_=sa.String))
                where = keyed.in_(sa.select(listed.table_valued("value").c.value))
            elif single and self.dialect == "postgresql" and not isinstance(
                    keyed.type, sa.types.NullType):
                where = one_of_values(keyed, "keys")
            else:
                where = keyed.in_(sa.bindparam("keys", expanding=True))
            selected = (self.select_columns(spec.table) if what == "rows"
                        else [*columns, spec.table.c[spec.id_column]])
            stmt = statements[shape] = sa.select(*selected).where(where)
        values = [k[0] for k in keys] if single else list(keys)
        return stmt, {"keys": json.dumps(values) if as_json else values}

    def _fetch_by_key(self, spec: StreamSpec, keys: Sequence[tuple]) -> dict[str, Row]:
        """Key string -> full row (children embedded) of the typed ``keys`` that exist,
        500 keys a query (:meth:`by_keys`)."""
        found: dict[str, Row] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                stmt, params = self.by_keys(spec, keys[start:start + 500])
                rows = self.rows_of(spec.table, conn.execute(stmt, params).all())
                self.load_children(conn, spec, rows)
                found.update((key_text([r[k] for k in spec.key]), r) for r in rows)
        return found

    def _rejected(self, spec: StreamSpec, bad: list[tuple[tuple, str]]) -> list[Rejected]:
        if not bad:
            return []
        rows = {key_text([r[k] for k in spec.key]): r
                for r in self._rows_by_key(spec, [key for key, _ in bad])}
        out = []
        for key, reason in bad:
            text = key_text(key)
            out.append(Rejected(text, f"table {spec.table.name} key {text}", reason,
                                rows.get(text, {})))
        return out

    def _pages(self, spec: StreamSpec, batch_size: int, since: Any, where, *,
               timeline: bool) -> Iterator[Batch]:
        keys = spec.key_columns()
        expr = spec.cursor_expr() if timeline else None
        last_cursor: Any = None
        last_key: tuple | None = None
        names, _ = self._row_shape(spec.table)
        while True:
            columns = self.select_columns(spec.table)
            if expr is not None:
                columns.append(expr.label(_CURSOR))
            stmt = sa.select(*columns)
            if where is not None:
                stmt = stmt.where(where)
            if expr is not None:
                if since is not None:
                    stmt = stmt.where(expr >= since)
                if last_key is not None:
                    stmt = stmt.where(sa.or_(expr > last_cursor, sa.and_(
                        expr == last_cursor, _key_after(keys, last_key))))
                stmt = stmt.order_by(expr, *keys)
            else:
                if last_key is not None:
                    stmt = stmt.where(_key_after(keys, last_key))
                stmt = stmt.order_by(*keys)
            with self.engine.connect() as conn:
                fetched = conn.execute(stmt.limit(batch_size)).all()
                if not fetched:
                    return
                rows = self.rows_of(spec.table, fetched)
                self.load_children(conn, spec, rows)
            last = fetched[-1]   # as the database holds it: keyset bounds compare raw values
            last_key = tuple(last[names.index(k)] for k in spec.key)
            last_cursor = fetched[-1][-1] if expr is not None else None
            yield self._batch(spec, rows,
                              self._timeline_cursor(spec, rows[-1]) if timeline else None)
            if len(fetched) < batch_size:
                return

    def _timeline_cursor(self, spec: StreamSpec, tail: Row) -> Cursor:
        value = tail[spec.cursor]
        if isinstance(value, dt.datetime):
            value = value if value.tzinfo else value.replace(tzinfo=self.tz)
        return Cursor(value=value_json(value, self.tz),
                      key=key_text([tail[k] for k in spec.key]))

    def _batch(self, spec: StreamSpec, rows: list[Row], cursor: Cursor | None,
               rejected: list[Rejected] | None = None) -> Batch:
        rejected = rejected or []
        if spec.soft_delete is None:
            return Batch(rows=rows, cursor=cursor, rejected=rejected)
        live = [r for r in rows if r[spec.soft_delete] in _FALSY]
        gone = [key_text([r[k] for k in spec.key]) for r in rows
                if r[spec.soft_delete] not in _FALSY]
        return Batch(rows=live, cursor=cursor, deleted_keys=gone, rejected=rejected)

    # -- lookup -----------------------------------------------------------
    def lookup(self, stream: str, keys: Sequence[str]) -> dict[str, Row]:
        """Current rows by key (children embedded); unknown, malformed or soft-deleted
        keys are absent."""
        spec = self.spec(stream)
        typed = []
        for key in keys:
            try:
                typed.append(self.key_values(spec, key))
            except ValueError:
                continue
        return {key: row for key, row in self._fetch_by_key(spec, typed).items()
                if spec.soft_delete is None or row[spec.soft_delete] in _FALSY}

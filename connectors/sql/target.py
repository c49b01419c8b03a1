"""Write side of the SQL connector: native upserts, child replacement, deletes.

A batch is written in one transaction and committed before ``upsert``
returns, because the engine records "returned == committed". When the
batch statement fails, the batch is replayed row by row, each row in its
own SAVEPOINT, so one bad row comes back FAILED and the others are written.
"""

from __future__ import annotations

__all__ = ["SqlTargetMixin"]

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.sql.source import SqlSourceMixin
from crm2erp.connectors.sql.tables import StreamSpec, db_error_text, is_disconnect
from crm2erp.connectors.sql.values import column_kind, from_db, to_db
from crm2erp.contract import key_text
from crm2erp.errors import ConfigError, FatalError
from crm2erp.store.batch import upsert as native_upsert

log = logging.getLogger(__name__)

_DB_ERRORS = (sa.exc.DBAPIError, sa.exc.StatementError)


class RowProblem(ValueError):
    """A row refused before it reaches the database (unknown column, bad value)."""


@dataclass
class Item:
    """One input row, converted to column values."""

    index: int
    key: str
    key_values: tuple
    values: dict[str, Any]
    children: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class SqlTargetMixin(SqlSourceMixin):
    _unique_ok: set[str]

    # -- upsert -----------------------------------------------------------
    def upsert(self, stream: str, rows: Sequence[Row]) -> list[WriteResult]:
        spec = self.spec(stream)
        self._require_unique_key(spec)
        results: list[WriteResult | None] = [None] * len(rows)
        items: list[Item] = []
        for index, row in enumerate(rows):
            try:
                items.append(self._prepare(spec, index, row))
            except RowProblem as exc:
                key = key_text([row.get(k) for k in spec.key])
                results[index] = WriteResult(key, WriteAction.FAILED, error=str(exc))
        if items:
            unique_keys = len({it.key for it in items}) == len(items)
            outcome = None
            if unique_keys:
                try:
                    with self.engine.begin() as conn:
                        outcome = self._write(conn, spec, items, isolate=False)
                except _DB_ERRORS as exc:
                    if is_disconnect(exc):
                        raise self._unreachable(exc) from None
                    log.info("stream %s: batch of %d failed (%s); retrying row by row",
                             stream, len(items), db_error_text(exc))
            if outcome is None:
                try:
                    with self.engine.begin() as conn:
                        outcome = self._write(conn, spec, items, isolate=True)
                except _DB_ERRORS as exc:
                    raise self._unreachable(exc) from None
            for index, result in outcome.items():
                results[index] = result
        return [r for r in results if r is not None]

    def _require_unique_key(self, spec: StreamSpec) -> None:
        checked = self.__dict__.setdefault("_unique_ok", set())
        if spec.name not in checked:
            problem = self.unique_key_problem(spec)
            if problem:
                raise FatalError(problem)
            checked.add(spec.name)

    def _convert(self, table: sa.Table, values: Row, what: str) -> dict[str, Any]:
        cache = self.__dict__.setdefault("_column_types", {})
        types = cache.get(table)
        if types is None:     # looked up once per table, not per value
            types = cache[table] = {c.name: (c.type, column_kind(c.type) == "text")
                                    for c in table.c}
        out = {}
        for name, value in values.items():
            coltype, text = types.get(name, (None, False))
            if coltype is None:
                raise RowProblem(f"unknown column {name!r} in table {table.name!r}{what}")
            if value is None or (text and type(value) is str):   # nothing to convert
                out[name] = value
                continue
            try:
                out[name] = to_db(coltype, value, self.tz, self.dialect)
            except ValueError as exc:
                raise RowProblem(f"column {name!r} of table {table.name!r}{what}: "
                                 f"{exc}") from None
        return out

    def _prepare(self, spec: StreamSpec, index: int, row: Row) -> Item:
        child_names = {c.name: c for c in spec.children}
        plain = {k: v for k, v in row.items() if k not in child_names} if child_names else row
        values = self._convert(spec.table, plain, "")   # a new dict: ``row`` is left as is
        missing = [k for k in spec.key if values.get(k) is None]
        if missing:
            raise RowProblem(f"row has no value for key column {missing[0]!r} of "
                             f"table {spec.table.name!r}")
        key_values = tuple(values[k] for k in spec.key)
        item = Item(index, key_text(key_values), key_values, values)
        for name, child in child_names.items():
            lines = row.get(name)
            if lines is None:
                continue  # absent: leave the existing children alone
            if not isinstance(lines, list) or not all(isinstance(x, dict) for x in lines):
                raise RowProblem(f"{name!r} must be a list of rows for child table "
                                 f"{child.table.name!r}")
            converted = []
            for line in lines:
                line = dict(line)
                line[child.foreign_key] = key_values[0]
                converted.append(self._convert(child.table, line, f" (child {name!r})"))
            item.children[name] = converted
        return item

    # -- the write itself -------------------------------------------------
    def _write(self, conn: sa.Connection, spec: StreamSpec, items: list[Item], *,
               isolate: bool) -> dict[int, WriteResult]:
        existing = self._existing(conn, spec, items)
        out: dict[int, WriteResult] = {}
        pending: list[tuple[Item, WriteAction]] = []
        for item in items:
            old = existing.get(item.key)
            if old is not None and self._same(spec, old, item):
                out[item.index] = WriteResult(item.key, WriteAction.UNCHANGED)
            else:
                pending.append((item, WriteAction.UPDATED if old else WriteAction.CREATED))
        if not isolate:
            self._upsert_rows(conn, spec, [it for it, _ in pending], existing)
            self._replace_children(conn, spec, [it for it, _ in pending])
            out.update({it.index: WriteResult(it.key, action) for it, action in pending})
            pending = []
        for item, action in pending:  # row by row: a failing row cannot sink the others
            if item.key in existing:  # an earlier duplicate of this key was just written
                action = WriteAction.UPDATED
            try:
                with conn.begin_nested():
                    self._upsert_rows(conn, spec, [item], existing)
                    self._replace_children(conn, spec, [item])
            except _DB_ERRORS as exc:
                if is_disconnect(exc):
                    raise
                out[item.index] = WriteResult(item.key, WriteAction.FAILED,
                                              error=db_error_text(exc))
                continue
            existing[item.key] = dict(item.values) | item.children
            out[item.index] = WriteResult(item.key, action)
        ids = self._target_ids(conn, spec, [it for it in items if out[it.index].ok])
        return {index: result if not result.ok else
                WriteResult(result.key, result.action, target_id=ids.get(result.key))
                for index, result in out.items()}

    def _existing(self, conn: sa.Connection, spec: StreamSpec,
                  items: list[Item]) -> dict[str, Row]:
        stmt, params = self.by_keys(spec, [it.key_values for it in items])
        rows = self.rows_of(spec.table, conn.execute(stmt, params).all())
        if any(it.children for it in items):
            self.load_children(conn, spec, rows)
        return {key_text([r[k] for k in spec.key]): r for r in rows}

    def _same(self, spec: StreamSpec, old: Row, item: Item) -> bool:
        def norm(value):
            return from_db(value, self.tz)

        for name, value in item.values.items():
            if norm(value) != norm(old.get(name)):
                return False
        for child in spec.children:
            if child.name not in item.children:
                continue
            new, current = item.children[child.name], old.get(child.name, [])
            if child.key and all(all(line.get(k) is not None for k in child.key)
                                 for line in new):
                new = sorted(new, key=lambda line: tuple(line[k] for k in child.key))
            if len(new) != len(current):
                return False
            for line, have in zip(new, current, strict=True):
                if any(norm(v) != norm(have.get(k)) for k, v in line.items()):
                    return False
        return True

    def _upsert_rows(self, conn: sa.Connection, spec: StreamSpec, items: list[Item],
                     existing: dict[str, Row]) -> None:
        """Rows whose key exists are UPDATEd (a partial row, such as one whose other
        fields another system owns, must not trip NOT NULL columns); the rest go
        through the dialect's native upsert, which also covers a concurrent insert."""
        groups: dict[tuple[str, ...], list[Item]] = {}
        for item in items:
            groups.setdefault(tuple(sorted(item.values)), []).append(item)
        table, name = spec.table, conn.dialect.name
        for columns, group in groups.items():
            known = [it for it in group if it.key in existing]
            fresh = [it for it in group if it.key not in existing]
            updates = [c for c in columns if c not in spec.key] or [spec.key[0]]
            if known and [c for c in columns if c not in spec.key]:
                self._update_rows(conn, spec, known, [c for c in columns if c not in spec.key])
            if not fresh:
                continue
            params = [it.values for it in fresh]
            if name in ("sqlite", "postgresql", "mysql", "mariadb"):
                # compiled once per table and columns: one executemany on the driver, or
                # on PostgreSQL a COPY and one INSERT ... ON CONFLICT
                native_upsert(conn, table, params, spec.key, updates)
            else:  # any other dialect: plain inserts, safe under the flow lock
                conn.execute(table.insert(), params)

    @staticmethod
    def _update_rows(conn: sa.Connection, spec: StreamSpec, items: list[Item],
                     columns: list[str]) -> None:
        table = spec.table
        stmt = table.update().where(sa.and_(
            *(table.c[k] == sa.bindparam(f"k_{i}") for i, k in enumerate(spec.key)))
        ).values({c: sa.bindparam(f"v_{c}") for c in columns})
        conn.execute(stmt, [
            {**{f"k_{i}": v for i, v in enumerate(it.key_values)},
             **{f"v_{c}": it.values[c] for c in columns}} for it in items])

    def _replace_children(self, conn: sa.Connection, spec: StreamSpec,
                          items: list[Item]) -> None:
        for child in spec.children:
            parents = [it for it in items if child.name in it.children]
            if not parents:
                continue
            fk = child.table.c[child.foreign_key]
            conn.execute(child.table.delete().where(
                fk.in_([it.key_values[0] for it in parents])))
            groups: dict[tuple[str, ...], list[dict]] = {}
            for item in parents:
                for line in item.children[child.name]:
                    groups.setdefault(tuple(sorted(line)), []).append(line)
            for lines in groups.values():
                conn.execute(child.table.insert(), lines)

    def _target_ids(self, conn: sa.Connection, spec: StreamSpec,
                    items: list[Item]) -> dict[str, str]:
        if not items:
            return {}
        if not spec.id_column:  # composite key without id_column: the key is the id
            return {it.key: it.key for it in items}
        stmt, params = self.by_keys(spec, [it.key_values for it in items], "ids")
        return {key_text(row[:-1]): None if row[-1] is None else str(row[-1])
                for row in conn.execute(stmt, params).all()}   # fetched at once, not row by row

    # -- update (write-back) ----------------------------------------------
    def update(self, stream: str, rows: Sequence[Row]) -> list[WriteResult]:
        """Set the given columns on existing rows, found by key; never inserts."""
        spec = self.spec(stream)
        results = []
        with self.engine.begin() as conn:
            for row in rows:
                key = key_text([row.get(k) for k in spec.key])
                try:
                    values = self._convert(spec.table, {c: v for c, v in row.items()
                                                        if c not in spec.key}, "update")
                    where = self.key_filter(spec, [self.key_values(spec, key)])
                    with conn.begin_nested():
                        count = conn.execute(spec.table.update().where(where)
                                             .values(values)).rowcount
                except (RowProblem, ValueError, *_DB_ERRORS) as exc:
                    if isinstance(exc, sa.exc.DBAPIError) and is_disconnect(exc):
                        raise self._unreachable(exc) from None
                    text = db_error_text(exc) if isinstance(exc, _DB_ERRORS) else str(exc)
                    results.append(WriteResult(key, WriteAction.FAILED, error=text))
                    continue
                results.append(
                    WriteResult(key, WriteAction.UPDATED, target_id=key) if count
                    else WriteResult(key, WriteAction.FAILED,
                                     error=f"no row with key {key!r} in {spec.table.name!r}"))
        return results

    # -- delete -----------------------------------------------------------
    def delete(self, stream: str, keys: Sequence[str],
               mode: DeleteMode) -> list[WriteResult]:
        """IGNORE does nothing; ARCHIVE sets the archive column; DELETE removes rows.

        ``keys`` are target ids (``id_column`` values, the same as the key when
        no id column is configured). Rows archived or deleted come back
        UPDATED, ids no row has as :meth:`WriteResult.not_found`.
        """
        spec = self.spec(stream)
        mode = DeleteMode(mode)
        if mode is DeleteMode.IGNORE:
            return [WriteResult(str(k), WriteAction.UNCHANGED) for k in keys]
        if spec.id_column and spec.key != [spec.id_column]:
            by_id = self._keys_of_ids(spec, [str(k) for k in keys])
            results = self._delete_keys(stream, spec, list(by_id.values()), mode)
            back = {v: k for k, v in by_id.items()}
            found = {back[r.key]: r for r in results}
            return [found.get(str(k)) or WriteResult.not_found(str(k), f"table {spec.table.name}")
                    for k in keys]
        return self._delete_keys(stream, spec, keys, mode)

    def _delete_keys(self, stream: str, spec: StreamSpec, keys: Sequence[str],
                     mode: DeleteMode) -> list[WriteResult]:
        if mode is DeleteMode.IGNORE:
            return [WriteResult(str(k), WriteAction.UNCHANGED) for k in keys]
        if mode is DeleteMode.ARCHIVE and spec.archive is None:
            raise ConfigError(f"stream {stream!r}: delete mode 'archive' needs "
                              "'archive: {column: ..., value: ...}' in the stream's config")
        typed: dict[str, tuple] = {}
        failed: dict[str, WriteResult] = {}
        for key in keys:
            try:
                typed[str(key)] = self.key_values(spec, str(key))
            except ValueError as exc:
                failed[str(key)] = WriteResult(str(key), WriteAction.FAILED, error=str(exc))
        found: dict[str, str] = {}
        if typed:
            try:
                with self.engine.begin() as conn:
                    found = self._delete(conn, spec, list(typed.values()), mode)
            except sa.exc.IntegrityError:
                if mode is not DeleteMode.DELETE:
                    raise
                found, refused = self._delete_one_by_one(spec, typed)
                failed.update(refused)
            except _DB_ERRORS as exc:
                if is_disconnect(exc) or isinstance(exc, sa.exc.OperationalError):
                    raise self._unreachable(exc) from None
                raise FatalError(f"stream {stream!r}: {mode.value} failed on table "
                                 f"{spec.table.name!r}: {db_error_text(exc)}") from None
        results = []
        for key in map(str, keys):
            if key in failed:
                results.append(failed[key])
            else:
                k = key_text(typed[key])
                results.append(WriteResult(key, WriteAction.UPDATED, target_id=found[k])
                               if k in found
                               else WriteResult.not_found(key, f"table {spec.table.name}"))
        return results

    def _delete_one_by_one(self, spec: StreamSpec, typed: dict[str, tuple]
                           ) -> tuple[dict[str, str], dict[str, WriteResult]]:
        """Delete what the database allows; a row still referenced (a customer with
        invoices) is archived instead when the stream has an archive column, and
        refused with the reason otherwise."""
        found: dict[str, str] = {}
        refused: dict[str, WriteResult] = {}
        with self.engine.begin() as conn:
            for key, values in typed.items():
                try:
                    with conn.begin_nested():
                        found.update(self._delete(conn, spec, [values], DeleteMode.DELETE))
                    continue
                except sa.exc.IntegrityError as exc:
                    reason = db_error_text(exc)
                if spec.archive is None:
                    refused[key] = WriteResult(key, WriteAction.FAILED, error=(
                        f"cannot delete: still referenced ({reason}); configure "
                        "'archive:' on the stream to block such records instead"))
                    continue
                log.info("stream %s: %s is still referenced, archived instead of deleted",
                         spec.name, key)
                found.update(self._delete(conn, spec, [values], DeleteMode.ARCHIVE))
        return found, refused

    def _keys_of_ids(self, spec: StreamSpec, ids: list[str]) -> dict[str, str]:
        """Target id -> key string, for the ids that exist."""
        id_col = spec.table.c[spec.id_column]
        typed = [to_db(id_col.type, i, self.tz, self.dialect) for i in ids]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(id_col, *spec.key_columns()).where(id_col.in_(typed)))
            return {str(r[0]): key_text(r[1:]) for r in rows}

    def _delete(self, conn: sa.Connection, spec: StreamSpec, typed: list[tuple],
                mode: DeleteMode) -> dict[str, str]:
        where = self.key_filter(spec, typed)
        id_col = spec.table.c[spec.id_column] if spec.id_column else None
        columns = [*spec.key_columns(), *([id_col] if id_col is not None else [])]
        found = {}
        for row in conn.execute(sa.select(*columns).where(where)):
            key = key_text(row[:len(spec.key)])
            found[key] = key if id_col is None else str(row[-1])
        if not found:
            return found
        if mode is DeleteMode.ARCHIVE:
            column = spec.archive.column
            value = to_db(spec.table.c[column].type, spec.archive.value, self.tz, self.dialect)
            conn.execute(spec.table.update().where(where).values({column: value}))
        else:
            for child in spec.children:
                conn.execute(child.table.delete().where(
                    child.table.c[child.foreign_key].in_([k[0] for k in typed])))
            conn.execute(spec.table.delete().where(where))
        return found

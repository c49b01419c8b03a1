"""Write side of the file connector: upsert and delete by rewriting the file.

Every call reads the whole file, applies the rows in memory and replaces
the file atomically, so it suits the modest volumes that travel as files
(exports, imports, hand-offs), not millions of rows per batch.
"""

from __future__ import annotations

__all__ = ["FileTargetMixin"]

import logging
from collections.abc import Sequence

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.file.common import ResolvedStream
from crm2erp.connectors.file.formats import csv_text, read_table, write_table
from crm2erp.connectors.file.source import FileSourceMixin
from crm2erp.errors import ConfigError
from crm2erp.jsonutil import to_jsonable

log = logging.getLogger(__name__)


class FileTargetMixin(FileSourceMixin):
    def _stored(self, spec: ResolvedStream, row: Row) -> Row:
        """A row as the file will hold it, so comparisons see what a reread sees."""
        if spec.format == "csv":
            return {k: csv_text(v) for k, v in row.items()}
        return {k: to_jsonable(v) for k, v in row.items()}

    def _load(self, spec: ResolvedStream) -> tuple[list[str], list[Row], dict[str, int]]:
        columns, rows = read_table(spec.path, spec.format, self.config.encoding,
                                   self.config.delimiter)
        index: dict[str, int] = {}
        for position, row in enumerate(rows):
            key = self.key_of(spec, row)
            if key is not None:
                index.setdefault(key, position)
        return columns, rows, index

    def _save(self, spec: ResolvedStream, columns: list[str], rows: list[Row]) -> None:
        write_table(spec.path, spec.format, columns, rows, self.config.encoding,
                    self.config.delimiter)

    def upsert(self, stream: str, rows: Sequence[Row]) -> list[WriteResult]:
        """Create or update rows by key; the file is rewritten once per call."""
        spec = self.resolve(stream)
        results: list[WriteResult] = []
        with self.lock:
            columns, current, index = self._load(spec)
            if not columns:
                columns = list(spec.key)
            changed = False
            for row in rows:
                stored = self._stored(spec, row)
                key = self.key_of(spec, stored)
                if key is None:
                    results.append(WriteResult(
                        "", WriteAction.FAILED,
                        error=f"row has no value for key {'|'.join(spec.key)!r} "
                              f"of stream {stream!r}"))
                    continue
                for name in stored:
                    if name not in columns:
                        columns.append(name)
                if key in index:
                    old = current[index[key]]
                    new = old | stored
                    if new == old:
                        results.append(WriteResult(key, WriteAction.UNCHANGED, target_id=key))
                        continue
                    current[index[key]] = new
                    action = WriteAction.UPDATED
                else:
                    index[key] = len(current)
                    current.append(stored)
                    action = WriteAction.CREATED
                changed = True
                results.append(WriteResult(key, action, target_id=key))
            if changed:
                self._save(spec, columns, current)
        return results

    def delete(self, stream: str, keys: Sequence[str],
               mode: DeleteMode) -> list[WriteResult]:
        """DELETE removes rows, ARCHIVE sets the archive column, IGNORE does nothing.

        Rows removed or archived come back UPDATED, keys not found as
        :meth:`WriteResult.not_found`.
        """
        spec = self.resolve(stream)
        mode = DeleteMode(mode)
        keys = [str(k) for k in keys]
        if mode is DeleteMode.IGNORE:
            return [WriteResult(k, WriteAction.UNCHANGED) for k in keys]
        if mode is DeleteMode.ARCHIVE and spec.archive is None:
            raise ConfigError(f"stream {stream!r}: delete mode 'archive' needs "
                              "'archive: {column: ..., value: ...}' in the stream's config")
        with self.lock:
            columns, current, index = self._load(spec)
            hit = [k for k in keys if k in index]
            if hit and mode is DeleteMode.DELETE:
                drop = set(hit)
                current = [r for r in current if self.key_of(spec, r) not in drop]
            elif hit:
                column = spec.archive.column
                if column not in columns:
                    columns.append(column)
                value = self._stored(spec, {column: spec.archive.value})[column]
                for key in hit:
                    current[index[key]] = current[index[key]] | {column: value}
            if hit:
                self._save(spec, columns, current)
        found = set(hit)
        return [WriteResult(k, WriteAction.UPDATED, target_id=k) if k in found
                else WriteResult.not_found(k, spec.path.name) for k in keys]

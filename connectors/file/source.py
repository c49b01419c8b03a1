"""Read side of the file connector: filter by cursor, sort, cut into batches.

A file has no index, so each read scans it once (JSON Lines line by line,
keeping only rows at or after the watermark) and sorts what is kept.
"""

from __future__ import annotations

__all__ = ["FileSourceMixin"]

import logging
from collections.abc import Iterator, Sequence

from crm2erp.connectors.base import Batch, Cursor, Row
from crm2erp.connectors.file.common import FileBase, cursor_json, order_value
from crm2erp.connectors.file.formats import stream_rows
from crm2erp.errors import ConfigError

log = logging.getLogger(__name__)


class FileSourceMixin(FileBase):
    def _rows(self, stream) -> Iterator[Row]:
        if not stream.path.exists():
            raise ConfigError(f"stream {stream.name!r}: file {str(stream.path)!r} does not "
                              "exist; fix the stream's 'file:' or the connection's 'path:'")
        return stream_rows(stream.path, stream.format, self.config.encoding,
                           self.config.delimiter)

    def read(self, stream: str, since: Cursor | None = None, *,
             batch_size: int = 500) -> Iterator[Batch]:
        """Rows with ``cursor >= since.value`` sorted by ``(cursor, key)``.

        Rows without a cursor value come first on full reads (with
        ``Batch.cursor`` None) and are skipped on incremental reads, as in
        the SQL connector.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        spec = self.resolve(stream)
        floor = None
        if spec.cursor and since is not None and since.value is not None:
            floor = order_value(since.value, self.tz)
        kept: list[tuple[tuple, tuple, Row]] = []
        with self.lock:
            for row in self._rows(spec):
                position = order_value(row.get(spec.cursor), self.tz) if spec.cursor else (0, 0)
                if floor is not None and (position[0] == 0 or position < floor):
                    continue
                key = tuple(order_value(row.get(k), self.tz) for k in spec.key)
                kept.append((position, key, row))
        kept.sort(key=lambda item: (item[0], item[1]))
        for start in range(0, len(kept), batch_size):
            chunk = kept[start:start + batch_size]
            position, _, last = chunk[-1]
            cursor = None
            if spec.cursor and position[0] != 0:
                cursor = Cursor(cursor_json(position), self.key_of(spec, last))
            yield Batch(rows=[row for _, _, row in chunk], cursor=cursor)

    def lookup(self, stream: str, keys: Sequence[str]) -> dict[str, Row]:
        spec = self.resolve(stream)
        wanted = set(map(str, keys))
        found: dict[str, Row] = {}
        if not spec.path.exists():
            return found
        with self.lock:
            for row in self._rows(spec):
                key = self.key_of(spec, row)
                if key in wanted and key not in found:
                    found[key] = row
        return found

"""Read side of the file connector: parse cursors, filter, sort, cut into batches.

A file has no index, so each read scans it once, record by record, keeping
the rows at or after the watermark (filtered while streaming), and sorts
what is kept: in memory up to a bound, beyond it in sorted runs on disk that
are merged lazily (:mod:`.spill`), so memory stays flat whatever the size. A record that
cannot be used (undecodable bytes, an oversized field, a cursor value that
is not of the cursor's type, a key an earlier row of the file holds) is
rejected with its file and line, never read as a row and never a watermark.
"""

from __future__ import annotations

__all__ = ["FileSourceMixin"]

import itertools
import logging
from collections.abc import Iterator, Sequence

from crm2erp.connectors.base import Batch, Cursor, Rejected, Row
from crm2erp.connectors.cursortype import (
    CursorType,
    cursor_json,
    parse_cursor,
    parse_watermark,
)
from crm2erp.connectors.file.common import FileBase, order_value
from crm2erp.connectors.file.formats import read_records
from crm2erp.connectors.file.spill import SortedSpill
from crm2erp.errors import ConfigError

log = logging.getLogger(__name__)


class FileSourceMixin(FileBase):
    def _check_exists(self, stream) -> None:
        if not stream.path.exists():
            raise ConfigError(f"stream {stream.name!r}: file {str(stream.path)!r} does not "
                              "exist; fix the stream's 'file:' or the connection's 'path:'")

    def _floor(self, stream: str, ctype: CursorType, since: Cursor | None) -> tuple | None:
        if since is None or since.value is None:
            return None
        try:
            return parse_watermark(since.value, ctype, self.tz)
        except ValueError as exc:
            raise ConfigError(
                f"stream {stream!r}: the watermark {since.value!r} is not a cursor of type "
                f"{ctype.type} ({exc}); start again with `crm2erp sync run FLOW "
                "--full-refresh` or `--since DATE`") from None

    def read(self, stream: str, since: Cursor | None = None, *,
             batch_size: int = 500) -> Iterator[Batch]:
        """Rows with ``cursor >= since.value`` sorted by ``(parsed cursor, key)``.

        Rows without a cursor value come first on full reads (with
        ``Batch.cursor`` None) and are skipped on incremental reads, as in
        the SQL connector. Rejected records travel in the first batch.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        spec = self.resolve(stream)
        ctype = self.cursor_types.get(stream, CursorType())
        floor = self._floor(stream, ctype, since) if spec.cursor else None
        kept = SortedSpill()
        rejected: list[Rejected] = []
        first_line: dict[int, int] = {}   # hash of a key -> the first line holding it
        repeated: set[int] = set()         # keys on more than one line (hashed)
        self._check_exists(spec)
        with self.lock:
            for record in read_records(spec.path, spec.format, self.config.encoding,
                                       self.config.delimiter, self.config.max_field_size):
                where = f"{spec.path.name}:{record.line}"
                row = record.row
                if record.problem:
                    rejected.append(Rejected(self.key_of(spec, row) or "", where,
                                             record.problem, row))
                    continue
                key_text = self.key_of(spec, row)
                if key_text is not None:
                    first = first_line.setdefault(hash(key_text), record.line)
                    if first != record.line:
                        repeated.add(hash(key_text))
                        rejected.append(Rejected(key_text, where,
                                                 _repeat(key_text, spec, first), row))
                        continue
                position = (0, 0)
                value = row.get(spec.cursor) if spec.cursor else None
                if value is not None and value != "":
                    try:
                        position = parse_cursor(value, ctype, self.tz)
                        if floor is not None and position[0] != floor[0]:
                            raise ValueError(f"{value!r} is not of the same kind as the "
                                             f"watermark {since.value!r}")
                    except ValueError as exc:
                        rejected.append(Rejected(
                            key_text or "", where,
                            f"cursor {spec.cursor!r} ({ctype.describe()}): {exc}", row))
                        continue
                if floor is not None and (position[0] == 0 or position < floor):
                    continue
                key = tuple(order_value(row.get(k), self.tz) for k in spec.key)
                kept.add((position, key, record.line, row))
        try:
            yield from self._batches(spec, kept, rejected, batch_size, repeated, first_line)
        finally:
            kept.close()

    def _batches(self, spec, kept: SortedSpill, rejected: list[Rejected], batch_size: int,
                 repeated: set[int], first_line: dict[int, int]) -> Iterator[Batch]:
        """The kept rows in order, ``batch_size`` at a time; rejected ones in the first,
        and the first row of a repeated key in the batch where it would have been."""
        first, ordered = True, iter(kept)
        while chunk := list(itertools.islice(ordered, batch_size)):
            rows, cursor, held = [], None, list(rejected) if first else []
            for position, _, line, row in chunk:
                key = self.key_of(spec, row)
                if repeated and key is not None and hash(key) in repeated:
                    held.append(Rejected(key, f"{spec.path.name}:{line}",
                                         _repeat(key, spec, first_line[hash(key)]), row))
                    continue
                rows.append(row)
                if spec.cursor and position[0] != 0:
                    cursor = Cursor(cursor_json(position), key)
            yield Batch(rows=rows, cursor=cursor, rejected=held)
            first = False
        if first and rejected:
            yield Batch(rows=[], rejected=rejected)

    def lookup(self, stream: str, keys: Sequence[str]) -> dict[str, Row]:
        """Rows by key; unreadable records are left out (``read`` rejects them)."""
        spec = self.resolve(stream)
        wanted = set(map(str, keys))
        found: dict[str, Row] = {}
        if not spec.path.exists():
            return found
        with self.lock:
            for record in read_records(spec.path, spec.format, self.config.encoding,
                                       self.config.delimiter, self.config.max_field_size):
                key = None if record.problem else self.key_of(spec, record.row)
                if key in wanted and key not in found:
                    found[key] = record.row
        return found


def _repeat(key: str, spec, first: int) -> str:
    """Why the rows of a key that more than one line of the file holds are not read."""
    return (f"key {key!r} is on more than one row of {spec.path.name} (first on line "
            f"{first}): a file holds one row per key, so none of them is read; remove all "
            "but one, then `crm2erp dlq retry` the letters")

"""Reading and atomically rewriting CSV and JSON Lines files.

A rewrite goes to a temporary file in the same directory, is fsynced and
then renamed over the original (``os.replace``), so a reader or a crash
sees either the old file or the new one, never half of each.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_FIELD", "Record", "csv_text", "read_records", "read_table",
           "stream_rows", "write_table"]

import codecs
import csv
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm2erp.connectors.base import Row
from crm2erp.errors import RecordError
from crm2erp.jsonutil import to_jsonable

#: Python's csv module refuses fields over 128 KiB; fields are measured by us instead.
_CSV_LIMIT = 2**31 - 1
DEFAULT_MAX_FIELD = 16 * 1024 * 1024


@dataclass
class Record:
    """One record of a file: its row, or why it cannot be used, and where it is."""

    line: int
    row: Row
    problem: str | None = None


def _lines(handle, encoding: str) -> Iterator[tuple[int, str, str | None]]:
    """``(line number, text, problem)`` per physical line, decoded one line at a time.

    A line that does not decode is returned with its bad bytes as ``\\xNN``
    escapes and a problem naming the byte offset in the file.
    """
    offset = 0
    for number, raw in enumerate(handle, start=1):
        try:
            text, problem = raw.decode(encoding), None
        except UnicodeDecodeError as exc:
            text = raw.decode(encoding, errors="backslashreplace")
            problem = (f"bytes not valid {encoding} at byte offset {offset + exc.start} "
                       f"({raw[exc.start:exc.end]!r}: {exc.reason})")
        offset += len(raw)
        yield number, text, problem


def _whole_file_codec(encoding: str) -> bool:
    """Encodings whose newline is not the byte 0x0A cannot be decoded line by line."""
    return codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))


def read_records(path: Path, fmt: str, encoding: str, delimiter: str,
                 max_field: int = DEFAULT_MAX_FIELD) -> Iterator[Record]:
    """Every record of a file with its line; a record that cannot be read says why.

    Bytes are decoded line by line, so one undecodable byte costs one record,
    not the file; a CSV field longer than ``max_field`` characters rejects its
    record. CSV values are strings, "" read as None.
    """
    with open(path, "rb") as handle:
        if _whole_file_codec(encoding):
            try:
                text = handle.read().decode(encoding)
            except UnicodeDecodeError as exc:
                raise RecordError(f"{path.name}: bytes not valid {encoding} at byte offset "
                                  f"{exc.start} ({exc.reason})", stage="read") from None
            lines = ((n, line, None)
                     for n, line in enumerate(text.splitlines(keepends=True), start=1))
        else:
            lines = _lines(handle, encoding)
        if fmt == "csv":
            yield from _csv_records(lines, delimiter, max_field, path.name)
        else:
            yield from _jsonl_records(lines)


def _csv_records(lines, delimiter: str, max_field: int, name: str) -> Iterator[Record]:
    problems: dict[int, str] = {}

    def texts():
        for number, text, problem in lines:
            if problem:
                problems[number] = problem
            yield text

    if csv.field_size_limit() < _CSV_LIMIT:
        csv.field_size_limit(_CSV_LIMIT)
    reader = csv.reader(texts(), delimiter=delimiter)
    header: list[str] | None = None
    first = 1
    while True:
        try:
            values = next(reader)
            problem = None
        except StopIteration:
            return
        except csv.Error as exc:
            values, problem = [], f"not valid CSV ({exc})"
        span = range(first, reader.line_num + 1)
        start, first = span.start, reader.line_num + 1
        bad = next((problems.pop(n) for n in span if n in problems), problem)
        if header is None:
            if bad:
                raise RecordError(f"{name}:{start} (the header): {bad}", stage="read")
            header = values
            continue
        if not values and not bad:
            continue
        row = {k: (None if v == "" else v) for k, v in zip(header, values, strict=False)}
        row |= {k: None for k in header[len(values):]}
        if bad is None:
            big = next((k for k, v in row.items() if v is not None and len(v) > max_field),
                       None)
            if big is not None:
                size = len(row[big])
                bad = (f"field {big!r} has {size} characters, more than the limit of "
                       f"{max_field} (the connection's max_field_size)")
                row = {k: (v if k != big else v[:200] + "...") for k, v in row.items()}
        yield Record(start, row, bad)


def _jsonl_records(lines) -> Iterator[Record]:
    for number, line, problem in lines:
        if problem:
            yield Record(number, {"line": line.rstrip("\r\n")}, problem)
            continue
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Record(number, {"line": line.rstrip("\r\n")},
                         f"not valid JSON ({exc.msg})")
            continue
        if not isinstance(value, dict):
            yield Record(number, {"line": line.rstrip("\r\n")},
                         "expected a JSON object per line")
            continue
        yield Record(number, value)


def stream_rows(path: Path, fmt: str, encoding: str, delimiter: str,
                max_field: int = DEFAULT_MAX_FIELD) -> Iterator[Row]:
    """Rows one at a time; a record that cannot be read is a RecordError naming its line."""
    for record in read_records(path, fmt, encoding, delimiter, max_field):
        if record.problem:
            raise RecordError(f"{path.name}:{record.line}: {record.problem}", stage="read")
        yield record.row


def read_table(path: Path, fmt: str, encoding: str, delimiter: str,
               max_field: int = DEFAULT_MAX_FIELD) -> tuple[list[str], list[Row]]:
    """Column order and every row of a file (empty when the file does not exist)."""
    if not path.exists():
        return [], []
    columns: list[str] = []
    if fmt == "csv":
        with open(path, encoding=encoding, errors="backslashreplace", newline="") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), [])
            columns = list(header)
    rows = list(stream_rows(path, fmt, encoding, delimiter, max_field))
    seen = set(columns)
    for row in rows:
        for name in row:
            if name not in seen:
                seen.add(name)
                columns.append(name)
    return columns, rows


def csv_text(value: Any) -> str | None:
    """How a value is stored in a CSV cell (None stays None, written as "")."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    value = to_jsonable(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def write_table(path: Path, fmt: str, columns: list[str], rows: list[Row],
                encoding: str, delimiter: str) -> None:
    """Replace ``path`` with ``rows`` atomically (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
            if fmt == "csv":
                writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
                writer.writerow(columns)
                for row in rows:
                    writer.writerow(["" if row.get(c) is None else csv_text(row.get(c))
                                     for c in columns])
            else:
                for row in rows:
                    ordered = {c: row[c] for c in columns if c in row}
                    handle.write(json.dumps(to_jsonable(ordered), ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself (best effort: not every OS allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

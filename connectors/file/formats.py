"""Reading and atomically rewriting CSV and JSON Lines files.

A rewrite goes to a temporary file in the same directory, is fsynced and
then renamed over the original (``os.replace``), so a reader or a crash
sees either the old file or the new one, never half of each.
"""

from __future__ import annotations

__all__ = ["csv_text", "read_table", "stream_rows", "write_table"]

import csv
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crm2erp.connectors.base import Row
from crm2erp.errors import RecordError
from crm2erp.jsonutil import to_jsonable


def stream_rows(path: Path, fmt: str, encoding: str, delimiter: str) -> Iterator[Row]:
    """Rows one at a time; CSV values are strings, with "" read as None."""
    with open(path, encoding=encoding, newline="") as handle:
        if fmt == "csv":
            for row in csv.DictReader(handle, delimiter=delimiter):
                yield {k: (None if v == "" else v) for k, v in row.items() if k is not None}
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordError(f"{path.name}:{number}: not valid JSON ({exc.msg})",
                                  stage="read") from None
            if not isinstance(value, dict):
                raise RecordError(f"{path.name}:{number}: expected a JSON object per line",
                                  stage="read")
            yield value


def read_table(path: Path, fmt: str, encoding: str,
               delimiter: str) -> tuple[list[str], list[Row]]:
    """Column order and every row of a file (empty when the file does not exist)."""
    if not path.exists():
        return [], []
    columns: list[str] = []
    if fmt == "csv":
        with open(path, encoding=encoding, newline="") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), [])
            columns = list(header)
    rows = list(stream_rows(path, fmt, encoding, delimiter))
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

"""Stream resolution, keys and value ordering shared by the file connector's sides.

Files hold text, so ordering compares values by what they look like:
numbers as numbers, ISO-8601 timestamps as instants (naive ones in the
configured time zone), anything else as text.
"""

from __future__ import annotations

__all__ = ["FileBase", "ResolvedStream", "order_value", "cursor_json"]

import datetime as dt
import re
import threading
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from crm2erp.connectors.base import Connector, Row, StreamInfo
from crm2erp.connectors.file.config import FileArchiveConfig, FileConfig, FileStreamConfig
from crm2erp.errors import ConfigError

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl"}


def order_value(value: Any, tz: dt.tzinfo) -> tuple:
    """A sortable, comparable form: (rank, value) with None < numbers < times < text."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, Decimal(int(value)))
    if isinstance(value, int | float | Decimal):
        return (1, Decimal(str(value)))
    if isinstance(value, dt.datetime):
        return (2, value if value.tzinfo else value.replace(tzinfo=tz))
    if isinstance(value, dt.date):
        return (2, dt.datetime(value.year, value.month, value.day, tzinfo=tz))
    text = str(value).strip()
    if _NUMBER.match(text):
        try:
            return (1, Decimal(text))
        except InvalidOperation:
            pass
    if len(text) >= 10 and text[4:5] == "-":
        try:
            moment = dt.datetime.fromisoformat(text)
            return (2, moment if moment.tzinfo else moment.replace(tzinfo=tz))
        except ValueError:
            pass
    return (3, text)


def cursor_json(order: tuple) -> Any:
    """The JSON form of an :func:`order_value` for ``Cursor.value``."""
    rank, value = order
    if rank == 0:
        return None
    if rank == 1:
        return int(value) if value == value.to_integral_value() else float(value)
    if rank == 2:
        return value.astimezone(dt.UTC).isoformat()
    return value


@dataclass(frozen=True)
class ResolvedStream:
    name: str
    path: Path
    format: str
    key: list[str]
    cursor: str | None
    archive: FileArchiveConfig | None


class FileBase(Connector):
    """Streams of a directory, keys and a lock for read-modify-write cycles."""

    name = "file"
    Config = FileConfig

    def __init__(self, config: FileConfig):
        super().__init__(config)
        self.config: FileConfig = config
        self.tz = zoneinfo.ZoneInfo(config.timezone)
        self.lock = threading.RLock()

    def stream_configs(self) -> dict[str, FileStreamConfig]:
        if self.config.streams is not None:
            return self.config.streams
        directory = self.config.path
        if not directory.is_dir():
            return {}
        return {p.stem: FileStreamConfig(file=p.name)
                for p in sorted(directory.iterdir())
                if p.is_file() and p.suffix.lower() in _SUFFIXES}

    def streams(self) -> list[StreamInfo]:
        return [StreamInfo(name=n, key=tuple(c.key_columns), cursor_field=c.cursor,
                           delete_modes=("delete", "archive") if c.archive else ("delete",))
                for n, c in self.stream_configs().items()]

    def resolve(self, stream: str) -> ResolvedStream:
        configs = self.stream_configs()
        if stream not in configs:
            known = ", ".join(sorted(configs)) or "none"
            raise ConfigError(f"file connection ({self.config.path}) has no stream "
                              f"{stream!r} (streams: {known})")
        cfg = configs[stream]
        path = self.config.file_path(cfg.file)
        fmt = cfg.format or _SUFFIXES.get(path.suffix.lower()) or self.config.format
        if fmt is None:
            raise ConfigError(f"stream {stream!r}: cannot tell the format of {cfg.file!r}; "
                              "set 'format: csv' or 'format: jsonl'")
        return ResolvedStream(stream, path, fmt, cfg.key_columns, cfg.cursor, cfg.archive)

    def check(self) -> None:
        if not self.config.path.is_dir():
            raise ConfigError(f"file connection: directory {str(self.config.path)!r} does "
                              "not exist; create it or fix 'path:'")
        for name in self.stream_configs():
            self.resolve(name)

    @staticmethod
    def key_of(stream: ResolvedStream, row: Row) -> str | None:
        """The row's key string (parts joined with "|"), None if a part is missing."""
        parts = [row.get(k) for k in stream.key]
        if any(p is None or p == "" for p in parts):
            return None
        return "|".join(str(p) for p in parts)

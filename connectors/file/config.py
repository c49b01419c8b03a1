"""Configuration of the file connector (a directory of CSV or JSON Lines files)."""

from __future__ import annotations

__all__ = ["FileArchiveConfig", "FileConfig", "FileStreamConfig"]

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from crm2erp.connectors.base import ConnectorConfig, TimeZoneName
from crm2erp.errors import ConfigError

Format = Literal["csv", "jsonl"]


class FileArchiveConfig(ConnectorConfig):
    """How ``delete(mode=ARCHIVE)`` marks a row: sets ``column`` to ``value``."""

    column: str
    value: Any = False


class FileStreamConfig(ConnectorConfig):
    """One stream = one file in the directory."""

    file: str
    key: str | list[str] = "id"
    cursor: str | None = None
    format: Format | None = None
    archive: FileArchiveConfig | None = None

    @property
    def key_columns(self) -> list[str]:
        return [self.key] if isinstance(self.key, str) else list(self.key)

    @field_validator("file")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if Path(value).is_absolute() or ".." in Path(value).parts:
            raise ValueError(f"{value!r} must be a file name inside the connection's path")
        return value


class FileConfig(ConnectorConfig):
    """``path`` is the directory; ``format`` defaults to each file's suffix.

    A stream's file must resolve inside ``path``: a symbolic link pointing out of
    the folder is refused unless ``follow_symlinks: true``.
    """

    path: Path
    format: Format | None = None
    encoding: str = "utf-8"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    timezone: TimeZoneName = "UTC"
    streams: dict[str, FileStreamConfig] | None = None
    follow_symlinks: bool = False

    def file_path(self, name: str) -> Path:
        """The path of the stream file ``name``, refused when it resolves outside
        the folder (through a symbolic link) and ``follow_symlinks`` is off."""
        path = self.path / name
        if not self.follow_symlinks:
            folder, real = self.path.resolve(), path.resolve()
            if not real.is_relative_to(folder):
                raise ConfigError(f"file connection: {str(path)!r} resolves to {str(real)!r}, "
                                  f"outside the folder {str(folder)!r}; move the file into "
                                  "the folder or set 'follow_symlinks: true'")
        return path

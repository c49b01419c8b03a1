"""Configuration of the SQL connector (validated when connections.yaml is loaded).

The URL is a ``SecretStr`` because it usually carries the password; its
password is registered with :mod:`crm2erp.redact` as soon as it is parsed so
that no driver error message can leak it.
"""

from __future__ import annotations

__all__ = ["ArchiveConfig", "ChildConfig", "SqlConfig", "SqlStreamConfig"]

from typing import Any

import sqlalchemy as sa
from pydantic import Field, SecretStr, field_validator, model_validator

from crm2erp.connectors.base import ConnectorConfig, TimeZoneName
from crm2erp.redact import register_secret


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class ArchiveConfig(ConnectorConfig):
    """How ``delete(mode=ARCHIVE)`` marks a row: ``UPDATE table SET column = value``."""

    column: str
    value: Any = False


class ChildConfig(ConnectorConfig):
    """A child table embedded in its parent row as a list (e.g. order lines).

    ``foreign_key`` holds the parent's key value; ``key`` orders the children
    and identifies them (optional).
    """

    table: str
    foreign_key: str
    key: str | list[str] | None = None

    @property
    def key_columns(self) -> list[str]:
        return _as_list(self.key)


class SqlStreamConfig(ConnectorConfig):
    """One stream = one table (plus its embedded children)."""

    table: str
    key: str | list[str]
    cursor: str | None = None
    id_column: str | None = None
    children: dict[str, ChildConfig] = Field(default_factory=dict)
    archive: ArchiveConfig | None = None
    soft_delete_column: str | None = None

    @property
    def key_columns(self) -> list[str]:
        return _as_list(self.key)

    @model_validator(mode="after")
    def _children_need_single_key(self) -> SqlStreamConfig:
        if not self.key_columns:
            raise ValueError(f"stream on table {self.table!r}: key must name a column")
        if self.children and len(self.key_columns) != 1:
            raise ValueError(
                f"stream on table {self.table!r}: children need a single-column key "
                f"(got {self.key_columns}); the child foreign key holds that one value")
        return self


class SqlConfig(ConnectorConfig):
    """``url`` is any SQLAlchemy URL; ``schema`` an optional database schema."""

    model_config = ConnectorConfig.model_config | {"populate_by_name": True}

    url: SecretStr
    db_schema: str | None = Field(default=None, alias="schema")
    timezone: TimeZoneName = "UTC"
    streams: dict[str, SqlStreamConfig] | None = None

    @field_validator("url")
    @classmethod
    def _parse_url(cls, value: SecretStr) -> SecretStr:
        try:
            url = sa.engine.make_url(value.get_secret_value())
        except Exception:  # the library's message repeats the URL, password included
            raise ValueError(
                "not a valid SQLAlchemy URL; expected e.g. "
                "postgresql+psycopg://user:password@host:5432/dbname") from None
        register_secret(url.password if isinstance(url.password, str) else None)
        return value

    @property
    def sa_url(self) -> sa.URL:
        return sa.engine.make_url(self.url.get_secret_value())

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden, for messages and logs."""
        return self.sa_url.render_as_string(hide_password=True)

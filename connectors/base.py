"""The connector contract.

A connector does I/O only. The engine owns watermarks, the id
cross-reference, dead letters, retries of whole batches and ordering.

Reading: ``read(stream, since)`` yields :class:`Batch` objects in ascending
``(cursor, key)`` order. ``since`` is inclusive (``cursor >= since.value``):
the engine has already subtracted the flow's lookback, and re-reads are
harmless because unchanged records are skipped by payload hash. Each batch
carries the cursor of its last row, which the engine stores as the new
watermark only after the batch is committed in the target and state store.

Writing: ``upsert(stream, rows)`` writes by the stream's key (a key the target
can look up, so a retry after a crash updates instead of duplicating) and
returns one :class:`WriteResult` per row, in order. A row the target refuses
comes back with ``ok=False`` and the reason; the others are still written.
"""

from __future__ import annotations

__all__ = [
    "Row",
    "Cursor",
    "StreamInfo",
    "Batch",
    "Rejected",
    "WriteAction",
    "WriteResult",
    "DeleteMode",
    "Connector",
    "DelegatingConnector",
]

import enum
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict

Row = dict[str, Any]


def _known_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name "
                         "such as UTC or Europe/Berlin") from None
    return value


#: A config field naming an IANA time zone, checked when the config is loaded.
TimeZoneName = Annotated[str, AfterValidator(_known_zone)]


@dataclass(frozen=True)
class Cursor:
    """A position in a stream: the cursor value and the key as tie-breaker.

    ``value`` is JSON-serialisable (ISO-8601 string for timestamps, or a number).
    """

    value: Any
    key: str | None = None


@dataclass(frozen=True)
class StreamInfo:
    """What a connector says about one of its streams.

    ``key`` is what upsert matches on (often an external reference the
    integration writes, such as the canonical id in an ERP's ``crm_ref``).
    ``id_field`` is the field holding the system's own id, when it differs
    from the key (an autoincrement customer number, say): the engine
    identifies records by it in the id cross-reference, so a record has the
    same id there whether the system is read from or written to.
    ``fields`` are the top-level fields of the stream's records, when the
    connector knows them from its settings (empty: unknown); ``mappings
    validate`` checks mappings against them. ``delete_modes`` are the
    :class:`DeleteMode` values ``delete()`` can honour on this stream (None:
    not declared; the connector decides at run time).
    """

    name: str
    key: tuple[str, ...]
    cursor_field: str | None = None
    children: tuple[str, ...] = ()
    writable: bool = True
    id_field: str | None = None
    fields: tuple[str, ...] = ()
    delete_modes: tuple[str, ...] | None = None

    @property
    def identity(self) -> tuple[str, ...]:
        """The fields that identify a record of this stream in its own system."""
        return (self.id_field,) if self.id_field else self.key


@dataclass(frozen=True)
class Rejected:
    """A source record the connector could not turn into a usable row.

    ``key`` is the record's source key when it could be read (empty when not),
    ``where`` names the place it came from (``accounts.csv line 17``,
    ``table crm.accounts key 42``) and ``reason`` what is wrong with it
    (undecodable bytes, an oversized field, a cursor value that does not parse).
    ``raw`` holds what could be read. The engine dead-letters it (stage
    ``read``); a rejected record never moves the batch's cursor.
    """

    key: str
    where: str
    reason: str
    raw: Row = field(default_factory=dict)


@dataclass
class Batch:
    """Rows read in one go, and the cursor of the last row.

    ``cursor`` is the position of the last *usable* row; ``rejected`` lists the
    records between this batch's first and last row that could not be read.
    """

    rows: list[Row]
    cursor: Cursor | None = None
    deleted_keys: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class WriteAction(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"


@dataclass(frozen=True)
class WriteResult:
    """The outcome of writing one row.

    ``key`` is the row's key in the target stream (what upsert matched on);
    ``target_id`` the id the target system gave the record (its customer
    number, say), which the engine stores in the id cross-reference and uses
    for foreign keys and write-back. ``error`` is set when ``ok`` is false.
    """

    key: str
    action: WriteAction
    target_id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.action is not WriteAction.FAILED

    @classmethod
    def not_found(cls, key: str, where: str) -> WriteResult:
        """The outcome of a delete or archive of a record the target does not have.

        It is a failure, never "done": the runner dead-letters it (stage
        ``delete``) so a delete that reached nothing is reported. ``where``
        names the place looked in (``table customers``, ``Account``).
        """
        return cls(key, WriteAction.FAILED, error=f"not found: no record {key!r} in {where}")


class DeleteMode(enum.StrEnum):
    IGNORE = "ignore"
    ARCHIVE = "archive"
    DELETE = "delete"


class ConnectorConfig(BaseModel):
    """Base for connector configs: validated at the edge, unknown keys refused."""

    model_config = ConfigDict(extra="forbid")


class Connector:
    """Base class of every connector; a connector may be a source, a target or both.

    Subclasses set ``name`` and ``Config`` (a pydantic model, ``SecretStr`` for
    secrets) and implement the methods they support. ``__init__`` must not
    do I/O: ``check()`` is where connectivity and credentials are tested.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]] = ConnectorConfig

    def __init__(self, config: BaseModel):
        self.config = config

    # -- both sides -------------------------------------------------------
    def check(self) -> None:
        """Test connectivity and credentials; raise a clear error if they fail."""

    def streams(self) -> Sequence[StreamInfo]:
        raise NotImplementedError

    def stream(self, name: str) -> StreamInfo:
        for info in self.streams():
            if info.name == name:
                return info
        from crm2erp.errors import ConfigError

        known = ", ".join(sorted(s.name for s in self.streams())) or "none"
        raise ConfigError(f"connector {self.name!r} has no stream {name!r} (streams: {known})")

    def stream_fields(self, name: str, *, reflect: bool = False) -> tuple[str, ...]:
        """The top-level fields of ``name``'s records, empty when unknown.

        By default the stream's declared ``fields``; with ``reflect`` a connector
        may look at the live system's schema (I/O; raise RetriableError when it
        cannot be reached, ConfigError when the schema does not fit the settings).
        """
        return self.stream(name).fields

    def close(self) -> None:
        """Release connections; called by the engine when a run ends."""

    def take_warnings(self) -> list[str]:
        """Warnings the remote system sent with successful answers since the last call
        (SAP's ``sap-message`` header, say); the engine puts them on the run record."""
        return []

    # -- source side ------------------------------------------------------
    def read(self, stream: str, since: Cursor | None = None, *,
             batch_size: int = 500) -> Iterator[Batch]:
        raise NotImplementedError(f"{self.name} cannot read")

    # -- target side ------------------------------------------------------
    def upsert(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        raise NotImplementedError(f"{self.name} cannot write")

    def update(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        """Change some fields of records that already exist, found by the stream's key.

        Used for write-back (the ERP's customer number onto the CRM account):
        unlike :meth:`upsert`, it never creates a record, and the rows carry
        only the key and the fields to set. Connectors whose upsert already
        behaves so may keep this default.
        """
        return self.upsert(stream, rows)

    def lookup(self, stream: str, keys: Sequence[str]) -> Mapping[str, Row]:
        """Current rows of ``stream`` by key (missing keys are absent)."""
        raise NotImplementedError(f"{self.name} cannot look up")

    def delete(self, stream: str, keys: Sequence[str],
               mode: DeleteMode) -> Sequence[WriteResult]:
        """Archive or delete records, given their target ids (``WriteResult.target_id``).

        One result per id, in order: UPDATED when archived or deleted,
        :meth:`WriteResult.not_found` when the target has no such record (a
        delete that finds nothing is reported, not counted as done), FAILED
        with the reason when refused; IGNORE answers UNCHANGED. A record the
        system will not delete (an ERP customer with posted invoices, say) is
        archived or blocked instead, and its result says so.
        """
        raise NotImplementedError(f"{self.name} cannot delete")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DelegatingConnector(Connector):
    """A connector configured with ``config.streams`` (stream name -> stream config)
    that hands each call, with the stream's config, to ``reader`` and ``writer``.

    Subclasses build ``client``, ``reader`` and ``writer`` in ``__init__`` and
    implement :meth:`streams`; they override what their API does differently
    (a read-only stream refusing ``upsert``, another object to close).
    """

    config: Any
    client: Any
    reader: Any
    writer: Any

    def _stream_config(self, name: str) -> Any:
        self.stream(name)  # raises ConfigError naming the known streams
        return self.config.streams[name]

    def read(self, stream: str, since: Cursor | None = None, *,
             batch_size: int = 500) -> Iterator[Batch]:
        return self.reader.read(self._stream_config(stream), since, batch_size)

    def upsert(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        return self.writer.upsert(stream, self._stream_config(stream), rows)

    def lookup(self, stream: str, keys: Sequence[str]) -> Mapping[str, Row]:
        return self.writer.lookup(stream, self._stream_config(stream), keys)

    def close(self) -> None:
        self.client.close()

"""The contract between the core and its connectors.

The core (``crm2erp.engine``, ``crm2erp.store``, ``crm2erp.mapping``,
``crm2erp.http``) knows connectors only through this module; connectors
subclass :class:`Connector` and are found by entry point
(:mod:`crm2erp.registry`). ``crm2erp.connectors.base`` re-exports these names.

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
    "ConnectorConfig",
    "TimeZoneName",
    "CursorType",
    "CURSOR_TYPES",
    "Connector",
    "key_text",
]

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel

from crm2erp.configtypes import ConnectorConfig, TimeZoneName
from crm2erp.errors import ConfigError

Row = dict[str, Any]



def key_text(values: Sequence[Any]) -> str:
    """A record's key as the engine keeps it (xref, dead letters, cursors): its key
    values joined with ``|``, None as empty text."""
    if len(values) == 1:   # most keys: one field, often text already
        value = values[0]
        return value if type(value) is str else "" if value is None else str(value)
    return "|".join("" if v is None else str(v) for v in values)


#: ``auto``: numbers and ISO-8601 timestamps, anything else rejected (files only).
CURSOR_TYPES = ("auto", "timestamp", "date", "integer", "number", "string")


@dataclass(frozen=True)
class CursorType:
    """A cursor's type, as a flow declares it (``incremental: {type, format}``).

    ``format`` (strptime) is for timestamps/dates not in ISO-8601. How values
    are parsed and ordered by it is the connectors' business
    (:mod:`crm2erp.connectors.cursortype`).
    """

    type: str = "auto"
    format: str | None = None

    def describe(self) -> str:
        return self.type + (f" in format {self.format!r}" if self.format else "")


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
    not declared; the connector decides at run time). ``merges`` says the
    connector's :meth:`Connector.merge` folds one record of this stream into
    another by the system's own rules (documents moved, not just archived).
    """

    name: str
    key: tuple[str, ...]
    cursor_field: str | None = None
    children: tuple[str, ...] = ()
    writable: bool = True
    id_field: str | None = None
    fields: tuple[str, ...] = ()
    delete_modes: tuple[str, ...] | None = None
    merges: bool = False

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
    def declare_cursor(self, stream: str, cursor: Any) -> None:
        """The cursor type a flow declares for ``stream`` (a :class:`CursorType`).

        Connectors whose cursor values are parsed from text (files, text
        columns) order and filter by it; the default ignores it, for APIs
        whose cursors are typed by the API.
        """

    def check_cursor(self, stream: str) -> None:
        """Raise ConfigError when ``stream``'s cursor cannot be read as typed (may do I/O)."""

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

    def merge(self, stream: str, loser_id: str, survivor_id: str) -> WriteResult:
        """Fold the record ``loser_id`` into ``survivor_id`` (target ids) by the system's
        own merge, on a stream whose :class:`StreamInfo` says ``merges``: everything that
        points at the loser (orders, invoices, addresses) then points at the survivor and
        the loser is archived. Optional; ``dedupe scan`` merges use it when a stream
        declares it and archive the loser otherwise. One result: UPDATED with the
        loser's id when merged (``error`` may carry a note), FAILED with the reason.
        """
        raise NotImplementedError(f"{self.name} cannot merge records")

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

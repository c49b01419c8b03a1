"""The connector class of an API connector, written once.

An API connector is a reader and a writer around one HTTP client, configured by
``config.streams``. :class:`ApiConnector` builds the three from what the
subclass declares (``build_client``, ``Reader``, ``Writer``), lists the streams
from the one :class:`StreamInfo` a subclass describes per stream, checks the
connection (its access, then every stream, every problem named in one error) and
refuses a write to a stream that is not writable before anything is sent. A connector
whose API needs more than one client overrides :meth:`ApiConnector.connect`.
:class:`GuardedApiConnector` refuses ``upsert`` to such a stream that way, and
:class:`GuardedWriteBackConnector` ``update`` (write-back) too.
"""

from __future__ import annotations

__all__ = ["ApiConnector", "GuardedApiConnector", "GuardedWriteBackConnector"]

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from crm2erp.connectors.base import DelegatingConnector, Row, StreamInfo, WriteResult
from crm2erp.connectors.toolkit.errors import check_streams
from crm2erp.http import HttpClient


class ApiConnector(DelegatingConnector):
    """A :class:`DelegatingConnector` built from declarations.

    Invariants: ``client``, ``reader`` and ``writer`` exist once ``__init__``
    returns; :meth:`streams` lists every configured stream, in config order, as
    :meth:`stream_info` describes it; :meth:`writable_config` answers only a
    stream whose :class:`StreamInfo` is ``writable``.
    """

    #: the system's name in messages ("ERPNext")
    system: ClassVar[str]
    #: what a write to a stream that is not writable is told ("is read-only (no external_id)")
    read_only: ClassVar[str] = "is read-only"
    #: said after the streams' problems in ``check()``'s error (" - fix the field names")
    check_hint: ClassVar[str] = ""
    #: ``build_client(config, **client_options)``: the HTTP client (wrap in ``staticmethod``)
    build_client: ClassVar[Callable[..., HttpClient]]
    #: ``Reader(client, config)`` and ``Writer(client, config, reader)``
    Reader: ClassVar[Callable[..., Any]]
    Writer: ClassVar[Callable[..., Any]]

    def __init__(self, config: Any, **client_options: Any):
        super().__init__(config)
        self.connect(**client_options)

    def connect(self, **client_options: Any) -> None:
        """Set ``client``, ``reader`` and ``writer`` from the declarations."""
        self.client = self.build_client(self.config, **client_options)
        self.reader = self.Reader(self.client, self.config)
        self.writer = self.Writer(self.client, self.config, self.reader)

    def check(self) -> None:
        """:meth:`check_access`, then :meth:`stream_problem` of every stream (all of them,
        not the first only): one ConfigError naming each problem, then ``check_hint``."""
        self.check_access()
        check_streams(self.system, self.config.streams, self.stream_problem, self.check_hint)

    def check_access(self) -> None:
        """What proves the credentials before the streams are checked (nothing here)."""

    def stream_problem(self, stream: Any) -> str | None:
        """What the system lacks for the configured ``stream`` (its object, fields...),
        None when nothing; a ConfigError it raises is that stream's problem."""
        raise NotImplementedError

    def streams(self) -> Sequence[StreamInfo]:
        return [self.stream_info(name, stream) for name, stream in self.config.streams.items()]

    def stream_info(self, name: str, stream: Any) -> StreamInfo:
        """What the engine knows of the configured stream ``name`` (its config ``stream``)."""
        raise NotImplementedError

    def writable_config(self, name: str) -> Any:
        """The config of stream ``name``; NotImplementedError saying ``read_only`` when its
        :class:`StreamInfo` is not writable (nothing is sent then)."""
        stream = self._stream_config(name)
        if not self.stream_info(name, stream).writable:
            raise NotImplementedError(f"{self.system} stream {name!r} {self.read_only}")
        return stream


class GuardedApiConnector(ApiConnector):
    """An :class:`ApiConnector` whose ``upsert`` refuses a stream that is not writable
    (:meth:`writable_config`) before anything is sent, rather than leaving it to the
    writer."""

    def upsert(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        return self.writer.upsert(stream, self.writable_config(stream), rows)


class GuardedWriteBackConnector(GuardedApiConnector):
    """A :class:`GuardedApiConnector` with write-back: ``update`` hands the rows to the
    writer's ``update(name, stream, rows)``, refusing a stream that is not writable
    the same way."""

    def update(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        """Set fields of existing records (write-back)."""
        return self.writer.update(stream, self.writable_config(stream), rows)

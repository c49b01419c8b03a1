"""What every API target's writer shares besides its loops (:mod:`.writer`).

:class:`KeyedWriter` holds the client and the connection's config and knows the
stream setting writes match on (an external id field, a unique property, an
alternate key): a stream without it cannot be written, and the ConfigError
says which setting to give. :func:`rows_by_key` is the chunked look-up of
current records by that key; :func:`call_failed` the error of an answer a
connector has no use for, and :func:`json_answer` the body of one it has;
:func:`not_found` the failed result of a record the
system does not have, with what it said. :class:`WriteBackConnector` hands write-back
(``update``) to the writer like the other calls.
"""

from __future__ import annotations

__all__ = ["KeyedWriter", "WriteBackConnector", "call_failed", "json_answer", "not_found",
           "rows_by_key"]

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar

import requests

from crm2erp.connectors.base import DelegatingConnector, Row, WriteAction, WriteResult
from crm2erp.connectors.toolkit.batches import chunks
from crm2erp.connectors.toolkit.writer import required_setting
from crm2erp.errors import FatalError
from crm2erp.http import HttpClient, decode_json

Found = TypeVar("Found")


class KeyedWriter:
    """A target's writer: ``client``, ``config``, the connector's ``reader`` (for
    look-ups, when it reads them) and the key writes match on."""

    #: the system's name in messages ("Salesforce")
    system: ClassVar[str]
    #: the stream setting writes match on ("external_id_field")
    key_setting: ClassVar[str]
    #: what to do when it is not set ("set one (an External ID field ...) to write to it")
    key_hint: ClassVar[str]

    def __init__(self, client: HttpClient, config: Any, reader: Any = None):
        self.client, self.config, self.reader = client, config, reader

    def write_key(self, name: str, stream: Any) -> Any:
        """The ``key_setting`` of stream ``name``; a ConfigError naming the stream, the
        setting and ``key_hint`` when it is not set (nothing can be written then)."""
        return required_setting(getattr(stream, self.key_setting),
                                f"{self.system} stream {name!r} has no {self.key_setting}; "
                                f"{self.key_hint}")


def rows_by_key(keys: Sequence[Any], size: int,
                fetch: Callable[[list[str]], Iterable[tuple[str, Found]]]) -> dict[str, Found]:
    """``{key: current row}`` (or whatever else is read by key) for ``keys`` (as text,
    each asked once, order kept): ``fetch(chunk)`` reads at most ``size`` of them and
    yields ``(key, row)`` for the ones it finds; a key not found is simply not in the
    answer."""
    wanted = list(dict.fromkeys(str(k) for k in keys))
    found: dict[str, Found] = {}
    for chunk in chunks(wanted, size):
        found.update(fetch(list(chunk)))
    return found


def call_failed(system: str, what: str, resp: requests.Response) -> FatalError:
    """``FatalError("HubSpot search on deals failed with HTTP 500: <body>")`` (the
    body's first 300 characters): an answer the connector cannot use."""
    return FatalError(f"{system} {what} failed with HTTP {resp.status_code}: "
                      f"{resp.text[:300]}")


def json_answer(system: str, what: str, resp: requests.Response) -> Any:
    """The decoded JSON body of ``resp`` when it is a success (below HTTP 400), else the
    :func:`call_failed` error naming ``what`` (``"search on deals"``)."""
    if resp.status_code >= 400:
        raise call_failed(system, what, resp)
    return decode_json(resp)


def not_found(record_id: str, where: str, detail: str) -> WriteResult:
    """:meth:`WriteResult.not_found` (a failure the engine dead-letters, never "done")
    with what the system said after it: ``not found: no record '1' in Account
    (NOT_FOUND: ...)``."""
    gone = WriteResult.not_found(record_id, where)
    return WriteResult(record_id, WriteAction.FAILED, error=f"{gone.error} ({detail})")


class WriteBackConnector(DelegatingConnector):
    """A :class:`DelegatingConnector` whose writer has ``update(name, stream, rows)``."""

    def update(self, stream: str, rows: Sequence[Row]) -> Sequence[WriteResult]:
        """Set fields of existing records found by their id (write-back); never
        creates one, unlike ``upsert``."""
        return self.writer.update(stream, self._stream_config(stream), rows)

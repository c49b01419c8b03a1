"""The connector conformance suite, shipped as a pytest plugin.

Every API connector must pass the same checks against its emulator. A
connector's test module subclasses :class:`ConnectorConformance` (the name
must start with ``Test`` to be collected) and provides three fixtures:

``emulator``
    an object following :class:`EmulatorControl` (a running emulator),
``connector``
    a connector with good credentials pointing at that emulator, configured
    with a small backoff so retries are quick,
``bad_connector``
    the same connector with wrong credentials.

and sets the class attributes ``read_stream`` (a stream seeded with several
pages of data, many rows sharing a cursor value) and ``write_stream`` (or
None for a read-only connector: the suite then checks that writing is
refused). The plugin is registered under the ``pytest11`` entry point
``crm2erp``, so third-party connector packages get it by installing crm2erp.
"""

from __future__ import annotations

__all__ = ["EmulatorControl", "ConnectorConformance", "read_all"]

from collections import Counter
from typing import Any, Protocol

import pytest

from crm2erp.contract import Batch, Connector, Cursor, WriteAction
from crm2erp.errors import ConfigError, FatalError, RetriableError


class EmulatorControl(Protocol):
    """What the suite needs from an emulator (stream names are the connector's)."""

    base_url: str

    def count(self, stream: str) -> int: ...
    def fail_next(self, kind: int | str, times: int = 1, retry_after: int | None = None) -> None:
        """Fail the next ``times`` API calls: ``kind`` 429/500/503 or ``"truncate"``."""
    def touch(self, stream: str, n: int) -> list[str]:
        """Modify ``n`` records (all in one instant); return their keys."""
    def delete_records(self, stream: str, n: int) -> list[str]: ...
    def sample_rows(self, stream: str, n: int) -> list[dict[str, Any]]:
        """Rows that do not exist yet and are valid to upsert."""
    def invalid_row(self, stream: str) -> dict[str, Any]:
        """A row the API refuses on its own (a required field missing, say)."""
    def exhaust_limit(self) -> None:
        """Use up the API quota, so the next call is refused for the day."""
    def expire_tokens(self) -> None: ...


def read_all(connector: Connector, stream: str, since: Cursor | None = None,
             batch_size: int = 500) -> list[Batch]:
    return list(connector.read(stream, since, batch_size=batch_size))


def _keys(batches: list[Batch], key_field: str) -> list[str]:
    return [str(row[key_field]) for batch in batches for row in batch.rows]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: the crm2erp connector conformance suite")


@pytest.mark.conformance
class ConnectorConformance:
    """The checks; see the module docstring for what a subclass provides."""

    read_stream: str = ""
    write_stream: str | None = None
    resume_batch_size: int = 5  # must split a group of rows sharing one cursor value

    # hooks a subclass may override ------------------------------------
    def retry_waits(self, connector: Connector) -> list[float]:
        """Seconds the connector slept before retries (HTTP connectors: client stats)."""
        return list(connector.client.stats.waits)

    def key_field(self, connector: Connector) -> str:
        return connector.stream(self.read_stream).key[0]

    # -- checks --------------------------------------------------------
    def test_check_ok(self, connector):
        assert connector.check() is None

    def test_check_bad_credentials_is_fatal(self, bad_connector):
        with pytest.raises(FatalError):
            bad_connector.check()

    def test_stream_discovery(self, connector):
        names = [s.name for s in connector.streams()]
        assert self.read_stream in names
        assert len(names) == len(set(names))
        info = connector.stream(self.read_stream)
        assert info.key and info.cursor_field
        with pytest.raises(ConfigError):
            connector.stream("no_such_stream_xyz")

    def test_full_read_returns_every_record_once(self, connector, emulator):
        batches = read_all(connector, self.read_stream)
        keys = _keys(batches, self.key_field(connector))
        assert len(keys) == emulator.count(self.read_stream)
        assert not [k for k, n in Counter(keys).items() if n > 1]
        cursors = [(b.cursor.value, b.cursor.key) for b in batches if b.cursor]
        assert cursors == sorted(cursors)

    def test_resume_inside_equal_cursor_values(self, connector, emulator):
        key = self.key_field(connector)
        batches = read_all(connector, self.read_stream, batch_size=self.resume_batch_size)
        field = connector.stream(self.read_stream).cursor_field
        cut = next((i for i in range(len(batches) - 1)
                    if batches[i].rows and batches[i + 1].rows
                    and batches[i].rows[-1][field] == batches[i + 1].rows[0][field]), None)
        assert cut is not None, "seed data must put equal cursor values across a batch boundary"
        expected = _keys(batches[cut + 1:], key)
        resumed = _keys(read_all(connector, self.read_stream, batches[cut].cursor), key)
        assert resumed == expected

    def test_incremental_returns_changes_once(self, connector, emulator):
        key = self.key_field(connector)
        last = read_all(connector, self.read_stream)[-1].cursor
        touched = emulator.touch(self.read_stream, 5)
        keys = _keys(read_all(connector, self.read_stream, last), key)
        assert set(touched) <= set(keys)
        assert len(keys) == len(set(keys))
        assert len(keys) <= len(touched) + 1  # at most the row at the watermark again

    def test_empty_result(self, connector):
        future = Cursor("2999-01-01T00:00:00.000Z", None)
        batches = read_all(connector, self.read_stream, future)
        assert sum(len(b.rows) for b in batches) == 0

    def test_deletes_surfaced(self, connector, emulator):
        last = read_all(connector, self.read_stream)[-1].cursor
        gone = emulator.delete_records(self.read_stream, 3)
        batches = read_all(connector, self.read_stream, last)
        deleted = [k for b in batches for k in b.deleted_keys]
        assert sorted(deleted) == sorted(gone)
        assert not set(gone) & set(_keys(batches, self.key_field(connector)))

    def test_upsert_is_idempotent(self, connector, emulator):
        if self.write_stream is None:
            with pytest.raises(NotImplementedError):
                connector.upsert(self.read_stream, [{}])
            return
        before = emulator.count(self.write_stream)
        rows = emulator.sample_rows(self.write_stream, 5)
        first = list(connector.upsert(self.write_stream, rows))
        assert [r.action for r in first] == [WriteAction.CREATED] * 5
        second = list(connector.upsert(self.write_stream, rows))
        assert all(r.action in (WriteAction.UPDATED, WriteAction.UNCHANGED) for r in second)
        assert [r.target_id for r in first] == [r.target_id for r in second]
        assert all(r.target_id for r in first)
        assert emulator.count(self.write_stream) == before + 5

    def test_record_level_error_keeps_the_rest(self, connector, emulator):
        if self.write_stream is None:
            return self.test_upsert_is_idempotent(connector, emulator)
        rows = emulator.sample_rows(self.write_stream, 3)
        rows.insert(1, emulator.invalid_row(self.write_stream))
        results = list(connector.upsert(self.write_stream, rows))
        assert [r.ok for r in results] == [True, False, True, True]
        assert results[1].action is WriteAction.FAILED and results[1].error

    def test_retry_after_is_honoured(self, connector, emulator):
        emulator.fail_next(429, times=2, retry_after=1)
        batches = read_all(connector, self.read_stream)
        assert len(_keys(batches, self.key_field(connector))) == emulator.count(self.read_stream)
        assert self.retry_waits(connector).count(1.0) >= 2

    def test_5xx_and_cut_bodies_are_retried(self, connector, emulator):
        for kind in (500, 503, "truncate"):
            emulator.fail_next(kind)
        keys = _keys(read_all(connector, self.read_stream), self.key_field(connector))
        assert len(keys) == len(set(keys)) == emulator.count(self.read_stream)
        assert len(self.retry_waits(connector)) >= 3

    def test_persistent_5xx_is_retriable_error(self, connector, emulator):
        emulator.fail_next(503, times=1000)
        with pytest.raises(RetriableError):
            read_all(connector, self.read_stream)

    def test_exhausted_quota_is_fatal(self, connector, emulator):
        emulator.exhaust_limit()
        with pytest.raises(FatalError):
            read_all(connector, self.read_stream)

    def test_expired_token_is_refreshed(self, connector, emulator):
        connector.check()
        emulator.expire_tokens()
        keys = _keys(read_all(connector, self.read_stream), self.key_field(connector))
        assert len(keys) == emulator.count(self.read_stream)

"""Writing to Dataverse: upsert by alternate key with conditional PATCH.

``PATCH /api/data/v9.2/accounts(accountnumber='A-1')`` creates the row if
no row has that key and updates it otherwise, answering ``204 No Content``
with the row's URL in ``OData-EntityId`` either way. To tell the engine
whether it created or updated, the writer first sends the PATCH with
``If-None-Match: *`` (create only; ``412`` when the key exists) and on 412
again with ``If-Match: *`` (update only). Both are keyed by the alternate
key, so a retried batch updates what the first attempt created.

A row the API refuses (``{"error": {"code", "message"}}``) becomes
``WriteResult(FAILED, "code: message")``; the other rows are still written.
A write naming an entity set or column the environment does not have stops
the run with a :class:`~crm2erp.errors.ConfigError` instead.
Lookups are written as ``nav@odata.bind`` values, e.g.
``"parentcustomerid_account@odata.bind": "/accounts(accountnumber='A-1')"``.

Deletes are ``DELETE /api/data/v9.2/{entityset}({id})`` (``204``); archiving
deactivates the row, ``PATCH {entityset}({id})`` with ``If-Match: *`` and the
stream's ``archive`` state (``{"statecode": 1, "statuscode": 2}``). A ``404`` with
code ``0x80040217`` (the row does not exist) is "not found", a failed result the
engine dead-letters, never counted as done.

Write-back (:meth:`DynamicsWriter.update`) PATCHes a row by its primary id,
``PATCH accounts(<guid>)`` with ``If-Match: *``, so a row that no longer
exists fails with 404 instead of being created.
"""

from __future__ import annotations

__all__ = ["DynamicsWriter", "entity_id"]

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.dynamics.api import ODATA_HEADERS, names_unknown, odata_error
from crm2erp.connectors.dynamics.config import DynamicsConfig, DynamicsStreamConfig
from crm2erp.connectors.dynamics.source import DynamicsReader
from crm2erp.connectors.toolkit.odata import odata_string
from crm2erp.connectors.toolkit.targets import KeyedWriter, call_failed, not_found
from crm2erp.connectors.toolkit.timestamps import utc_text
from crm2erp.connectors.toolkit.writer import delete_in_batches, json_default, write_in_batches
from crm2erp.errors import ConfigError

_ENTITY_ID = re.compile(r"\(([0-9a-fA-F-]{36})\)\s*$")
#: the Dataverse error code of a row that does not exist
NOT_FOUND_CODE = "0x80040217"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


_wire = json_default("Dataverse", moment=lambda moment: utc_text(moment, millis=False))


def _body(stream: DynamicsStreamConfig, row: Row) -> dict[str, Any]:
    """The row without its primary id and the read-only lookup and annotation columns."""
    return {k: v for k, v in row.items() if k != stream.key and not
            (k.startswith("_") and k.endswith("_value")) and not k.startswith("@odata")}


def entity_id(resp: requests.Response) -> str | None:
    """The GUID at the end of the ``OData-EntityId`` header."""
    match = _ENTITY_ID.search(resp.headers.get("OData-EntityId", ""))
    return match[1].lower() if match else None


class DynamicsWriter(KeyedWriter):
    system = "Dynamics"
    key_setting = "alternate_key"
    key_hint = "define an alternate key on the table and list its columns to write to it"
    config: DynamicsConfig
    reader: DynamicsReader

    def upsert(self, name: str, stream: DynamicsStreamConfig,
               rows: Sequence[Row]) -> list[WriteResult]:
        columns = self.write_key(name, stream)
        empty = f"alternate key {', '.join(columns)} is empty: it is required to upsert"

        def send(chunk: list[Row]) -> list[WriteResult]:   # Dataverse upserts one row per call
            row = chunk[0]
            segment = ",".join(f"{c}={odata_string(row[c])}" for c in columns)
            url = f"{self.config.api_path}/{stream.entity_set}({segment})"
            return [self._write(stream, url, key_of(row), _body(stream, row))]

        def key_of(row: Row) -> str:
            return "|".join("" if row.get(c) is None else str(row[c]) for c in columns)

        return write_in_batches(
            rows, key_of, send, size=1, missing=empty,
            refuse=lambda row: empty if any(row.get(c) in (None, "") for c in columns) else None)

    def update(self, name: str, stream: DynamicsStreamConfig,
               rows: Sequence[Row]) -> list[WriteResult]:
        """Set columns of existing rows found by their primary id (never creates one)."""

        def not_an_id(key: Any) -> str:
            return f"stream {name!r}: {stream.key} {str(key or '')!r} is not a row id (GUID)"

        def send(chunk: list[Row]) -> list[WriteResult]:   # one row per call
            key = str(chunk[0][stream.key])
            resp = self._patch(f"{self.config.api_path}/{stream.entity_set}({key})",
                               _body(stream, chunk[0]), {"If-Match": "*"})
            if resp.status_code in (200, 204):
                return [WriteResult(key, WriteAction.UPDATED, target_id=key.lower())]
            return [self._failed(stream, key, resp)]

        return write_in_batches(
            rows, lambda row: row.get(stream.key), send, size=1, missing=not_an_id(""),
            refuse=lambda row: None if _GUID.match(str(row[stream.key])) else
            not_an_id(row[stream.key]))

    def delete(self, name: str, stream: DynamicsStreamConfig, ids: Sequence[str],
               mode: DeleteMode) -> list[WriteResult]:
        """Delete or deactivate rows by primary id; one result per id (each sent once)."""
        return delete_in_batches(
            ids, mode, lambda chunk: [self._delete_one(stream, chunk[0], mode)], size=1,
            refuse=lambda record_id: None if _GUID.match(record_id) else
            f"stream {name!r}: {record_id!r} is not a row id (GUID)")

    def _delete_one(self, stream: DynamicsStreamConfig, record_id: str,
                    mode: DeleteMode) -> WriteResult:
        url = f"{self.config.api_path}/{stream.entity_set}({record_id})"
        if mode is DeleteMode.DELETE:
            resp = self.client.request("DELETE", url, expect_json=False, headers=ODATA_HEADERS)
        else:
            resp = self._patch(url, dict(stream.archive), {"If-Match": "*"})
        if resp.status_code in (200, 204):
            return WriteResult(record_id, WriteAction.UPDATED, target_id=record_id.lower())
        error = odata_error(resp)
        if resp.status_code == 404 and error and error[0] == NOT_FOUND_CODE:
            return not_found(record_id, stream.entity_set, f"{error[0]}: {error[1]}")
        return self._failed(stream, record_id, resp)

    def _patch(self, url: str, body: dict[str, Any], condition: dict[str, str]):
        data = json.dumps(body, default=_wire).encode()
        return self.client.request("PATCH", url, data=data, expect_json=False, headers={
            **ODATA_HEADERS, "Content-Type": "application/json; charset=utf-8", **condition})

    def _write(self, stream: DynamicsStreamConfig, url: str, key: str,
               body: dict[str, Any]) -> WriteResult:
        for _ in range(2):  # a row deleted between the two calls gets one more create
            resp = self._patch(url, body, {"If-None-Match": "*"})
            if resp.status_code in (200, 201, 204):
                return WriteResult(key, WriteAction.CREATED, target_id=entity_id(resp))
            if resp.status_code != 412:
                return self._failed(stream, key, resp)
            resp = self._patch(url, body, {"If-Match": "*"})
            if resp.status_code in (200, 204):
                return WriteResult(key, WriteAction.UPDATED, target_id=entity_id(resp))
            if resp.status_code != 404:
                return self._failed(stream, key, resp)
        return self._failed(stream, key, resp)

    @staticmethod
    def _failed(stream: DynamicsStreamConfig, key: str, resp: requests.Response) -> WriteResult:
        error = odata_error(resp)
        if error is None:
            raise call_failed("Dataverse", f"upsert into {stream.entity_set}", resp)
        if resp.status_code in (400, 404) and names_unknown(error[1]):
            raise ConfigError(f"Dataverse refused the write to {stream.entity_set}: "
                              f"{error[0]}: {error[1][:500]} - fix the stream's entity_set or "
                              "the outbound mapping's column names (logical names; lookups "
                              "as <navigation property>@odata.bind)")
        return WriteResult(key, WriteAction.FAILED, error=f"{error[0]}: {error[1]}")

    def lookup(self, name: str, stream: DynamicsStreamConfig,
               keys: Sequence[str]) -> Mapping[str, Row]:
        columns = self.write_key(name, stream)
        if len(columns) != 1:
            raise ConfigError(f"Dynamics stream {name!r}: lookup needs a one-column "
                              "alternate key")
        return self.reader.lookup(stream, columns[0], keys)

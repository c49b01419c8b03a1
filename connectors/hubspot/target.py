"""Writing to HubSpot: batch upsert on a unique property.

``POST /crm/v3/objects/{type}/batch/upsert`` takes up to 100 inputs
``{"id": <unique value>, "idProperty": <property>, "properties": {...}}``
and creates or updates by that value, so a retried batch finds what the
first attempt created. Each input carries an ``objectWriteTraceId`` (its
position), which turns on HubSpot's multi-status answers: a 207 lists the
records written (``new`` says created or updated) and, per refused input,
an error naming its trace id. Refused inputs become
``WriteResult(FAILED, error)``; the rest of the batch is still written. A batch
refused for a property the object does not have (``PROPERTY_DOESNT_EXIST``) or
may not write stops the run with a :class:`~crm2erp.errors.ConfigError`: every
other batch would be refused the same way.
HubSpot property values are strings on the wire, so values are sent as text.

Deletes and archives (HubSpot's delete *is* an archive: the record goes to the
recycling bin) use ``POST /crm/v3/objects/{type}/batch/archive`` with record
ids, up to 100 per call. HubSpot answers ``204 No Content`` even for ids it does
not have, so the writer reads the ids first (``batch/read``) and reports the
missing ones as "not found", then reads again after the archive: an id still
there fails instead of being counted as done.

Write-back uses ``POST /crm/v3/objects/{type}/batch/update`` with the record
id (``{"id": "123", "properties": {...}}``), up to 100 per call: it changes
existing records only; an id HubSpot does not know comes back in an
``OBJECT_NOT_FOUND`` error listing it, and that row fails.
"""

from __future__ import annotations

__all__ = ["HubSpotWriter", "wire_value"]

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.hubspot.api import config_problem, describe_error, hubspot_error
from crm2erp.connectors.hubspot.config import RESERVED_FIELDS, HubSpotConfig, HubSpotStreamConfig
from crm2erp.connectors.hubspot.source import HubSpotReader
from crm2erp.connectors.toolkit.targets import KeyedWriter, json_answer
from crm2erp.connectors.toolkit.timestamps import utc_text
from crm2erp.connectors.toolkit.writer import delete_in_batches, write_in_batches
from crm2erp.errors import ConfigError, FatalError


def wire_value(value: Any) -> Any:
    """A Python value as HubSpot wants a property value (text; dates as ISO)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return utc_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, list | tuple | set):
        return ";".join(str(v) for v in value)  # multi-select checkboxes
    raise TypeError(f"cannot send {type(value).__name__} as a HubSpot property value")


def _properties(row: Row) -> dict[str, Any]:
    return {k: wire_value(v) for k, v in row.items() if k not in RESERVED_FIELDS}


def _error_of(resp) -> Mapping[str, Any]:
    """A refused call's HubSpot error (its first 300 characters as the message when the
    body is not one)."""
    return hubspot_error(resp) or {"message": resp.text[:300] or "no message"}


def _stop_if_config(stream: HubSpotStreamConfig, error: Mapping[str, Any]) -> None:
    problem = config_problem(error)
    if problem:
        raise ConfigError(f"HubSpot refused the write to {stream.object_type}: {problem}. Fix "
                          "the outbound mapping's property names or create the property in "
                          "HubSpot (internal name, not label).")


class HubSpotWriter(KeyedWriter):
    system = "HubSpot"
    key_setting = "id_property"
    key_hint = "set one (a property with unique values, such as erp_id) to write to it"
    config: HubSpotConfig
    reader: HubSpotReader

    def upsert(self, name: str, stream: HubSpotStreamConfig,
               rows: Sequence[Row]) -> list[WriteResult]:
        id_prop = self.write_key(name, stream)
        return self._write(stream, "upsert", id_prop, rows,
                           f"{id_prop} is empty: the unique id property is required to upsert")

    def update(self, name: str, stream: HubSpotStreamConfig,
               rows: Sequence[Row]) -> list[WriteResult]:
        """Set properties of existing records by their ``id`` (batch update)."""
        return self._write(stream, "update", "id", rows,
                           f"stream {name!r}: the row has no id, which update needs")

    def _write(self, stream: HubSpotStreamConfig, action: str, key: str, rows: Sequence[Row],
               missing: str) -> list[WriteResult]:
        """``batch/upsert`` on the unique property ``key`` or ``batch/update`` on the
        record ``id``, in calls of ``write_batch_size``; an id repeated in an update
        goes into another call (HubSpot refuses duplicate ids in one)."""
        return write_in_batches(
            rows, lambda row: row.get(key), lambda chunk: self._send(stream, action, key, chunk),
            size=self.config.write_batch_size, missing=missing, distinct_keys=action == "update")

    def _send(self, stream: HubSpotStreamConfig, action: str, key: str,
              chunk: list[Row]) -> list[WriteResult]:
        """``POST batch/{action}``; one result per row. A result is matched to its row by
        its ``objectWriteTraceId``, else by its ``key`` value (the unique property's, or
        the record id); an error by the trace ids or the ids it lists."""
        keys = [str(row[key]) for row in chunk]
        matched = {k.lower(): n for n, k in enumerate(keys)}
        id_property = {"idProperty": key} if action == "upsert" else {}
        inputs = [{"id": wire_value(row[key]), **id_property, "objectWriteTraceId": str(trace),
                   "properties": _properties(row)} for trace, row in enumerate(chunk)]
        resp = self.client.request(
            "POST", f"/crm/v3/objects/{stream.object_type}/batch/{action}",
            json={"inputs": inputs})
        if resp.status_code == 400:
            return self._refused(stream, resp, keys)
        body = json_answer("HubSpot", f"{action} of {stream.object_type}", resp)
        done: dict[int, WriteResult] = {}
        for result in body.get("results") or []:
            trace = result.get("objectWriteTraceId")
            value = result.get("id") if key == "id" else (result.get("properties") or {}).get(key)
            n = int(trace) if trace not in (None, "") else matched.get(str(value).lower())
            if n is not None and 0 <= n < len(keys):
                done[n] = WriteResult(keys[n], WriteAction.CREATED if result.get("new")
                                      else WriteAction.UPDATED, target_id=str(result["id"]))
        by_id = {k: n for n, k in enumerate(keys)}
        for error in body.get("errors") or []:
            _stop_if_config(stream, error)
            context = error.get("context") or {}
            hit = [int(t) for t in context.get("objectWriteTraceId") or []] + \
                [by_id[i] for i in context.get("ids") or [] if i in by_id]
            for n in hit:
                if 0 <= n < len(keys) and n not in done:
                    done[n] = WriteResult(keys[n], WriteAction.FAILED, error=describe_error(error))
        return [done.get(n) or WriteResult(k, WriteAction.FAILED,
                                           error="HubSpot reported no result for this input")
                for n, k in enumerate(keys)]

    @staticmethod
    def _refused(stream: HubSpotStreamConfig, resp, keys: list[str]) -> list[WriteResult]:
        """A batch refused as a whole (400): a configuration error stops the run; any
        other reason fails every row of the batch with HubSpot's message."""
        body = _error_of(resp)
        _stop_if_config(stream, body)
        return [WriteResult(k, WriteAction.FAILED, error=f"batch refused: "
                            f"{describe_error(body)}") for k in keys]

    # -- delete (archive) ---------------------------------------------------
    def delete(self, name: str, stream: HubSpotStreamConfig, ids: Sequence[str],
               mode: DeleteMode) -> list[WriteResult]:
        """Archive records by id; ``archive`` and ``delete`` both archive."""
        return delete_in_batches(ids, mode, lambda chunk: self._archive(stream, chunk),
                                 size=self.config.write_batch_size)

    def _archive(self, stream: HubSpotStreamConfig, ids: list[str]) -> list[WriteResult]:
        there = self._live_ids(stream, ids)
        gone = {i: WriteResult.not_found(i, stream.object_type) for i in ids if i not in there}
        if not there:
            return [gone[i] for i in ids]
        resp = self.client.request(
            "POST", f"/crm/v3/objects/{stream.object_type}/batch/archive",
            json={"inputs": [{"id": i} for i in ids if i in there]})
        if resp.status_code >= 400:
            error = describe_error(_error_of(resp))
            if resp.status_code != 400:
                raise FatalError(f"HubSpot archive of {stream.object_type} failed with "
                                 f"HTTP {resp.status_code}: {error}")
            return [gone[i] if i in gone else WriteResult(
                i, WriteAction.FAILED, error=f"archive refused: {error}") for i in ids]
        still = self._live_ids(stream, [i for i in ids if i in there])
        return [gone[i] if i in gone else WriteResult(
            i, WriteAction.FAILED, error="HubSpot accepted the archive, but the record is "
            "still there") if i in still else WriteResult(i, WriteAction.UPDATED, target_id=i)
            for i in ids]

    def _live_ids(self, stream: HubSpotStreamConfig, ids: list[str]) -> set[str]:
        """The ids among ``ids`` that HubSpot holds, not archived (``batch/read``)."""
        return set(self.reader.read_by_id(stream, ids, ["hs_object_id"])) & set(ids)

    def lookup(self, name: str, stream: HubSpotStreamConfig,
               keys: Sequence[str]) -> Mapping[str, Row]:
        """Current records by unique property value (``batch/read`` with ``idProperty``)."""
        found = self.reader.read_by_id(stream, list(keys), id_property=self.write_key(name, stream))
        return {key: {"id": str(record["id"]), **(record.get("properties") or {})}
                for key, record in found.items()}

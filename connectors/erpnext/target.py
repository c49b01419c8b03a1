"""Writing to ERPNext: create with ``POST``, update with ``PUT``, one record per call.

Records are matched on the stream's ``external_id_field`` (a unique custom
field such as ``custom_crm_id``). A new document is ``POST``ed, and submitted
at once (``docstatus: 1``) for streams with ``submit``; an existing draft is
updated with ``PUT`` of the changed fields only (a child table is sent whole:
Frappe replaces its rows). A submitted document cannot change any more: a
difference is reported as a failed record, for a steward to cancel and amend.

Frappe refusals (``exc_type`` plus ``_server_messages``) become the failed
record's reason. Writes go through a client that never retries on its own:
when an answer is lost the record is looked up again before it is sent
again, so a ``POST`` the server did apply is not repeated.
"""

from __future__ import annotations

__all__ = ["ErpNextWriter"]

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from crm2erp.connectors.base import Row, WriteAction, WriteResult
from crm2erp.connectors.erpnext.api import frappe_error
from crm2erp.connectors.erpnext.config import ErpNextStreamConfig
from crm2erp.connectors.erpnext.source import ErpNextReader, resource
from crm2erp.errors import ConfigError, RetriableError
from crm2erp.http import HttpClient, decode_json
from crm2erp.http.retry import backoff_delay

log = logging.getLogger(__name__)
_META = {"name", "owner", "creation", "modified", "modified_by", "idx", "parent",
         "parentfield", "parenttype", "doctype", "docstatus"}


def _wire(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # Frappe casts Float/Currency fields with flt()
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} to ERPNext")


def same(current: Any, desired: Any) -> bool:
    if current in (None, "") and desired in (None, ""):
        return True
    if isinstance(desired, dt.date | dt.datetime):
        desired = _wire(desired)
    if current == desired:
        return True
    if isinstance(current, bool) or isinstance(desired, bool):
        return False
    try:
        return Decimal(str(current)) == Decimal(str(desired))
    except (InvalidOperation, ValueError):
        return False


def _child_same(current: list[dict], desired: list[dict]) -> bool:
    if len(current) != len(desired):
        return False
    return all(same(have.get(k), v) for have, want in zip(current, desired, strict=True)
               for k, v in want.items())


class ErpNextWriter:
    def __init__(self, reader: ErpNextReader, writer: HttpClient, attempts: int):
        self.reader, self.client, self.attempts = reader, writer, attempts

    @staticmethod
    def _ext(name: str, stream: ErpNextStreamConfig) -> str:
        if not stream.external_id_field:
            raise ConfigError(f"ERPNext stream {name!r} is read-only: set external_id_field "
                              "(a unique custom field such as custom_crm_id) to write it")
        return stream.external_id_field

    def lookup(self, name: str, stream: ErpNextStreamConfig,
               keys: Sequence[str]) -> Mapping[str, Row]:
        ext = self._ext(name, stream)
        found: dict[str, Row] = {}
        wanted = list(dict.fromkeys(str(k) for k in keys))
        for start in range(0, len(wanted), 100):
            chunk = wanted[start:start + 100]
            for row in self.reader.list(stream.doctype, ["*"], [[ext, "in", chunk]],
                                        "name asc"):
                if stream.children:
                    row = self.reader.document(stream.doctype, row["name"]) or row
                found[str(row[ext])] = row
        return found

    def _changes(self, stream: ErpNextStreamConfig, current: Row, row: Row) -> dict[str, Any]:
        changes = {}
        for field, value in row.items():
            if field in stream.children:
                desired = list(value or [])
                if not _child_same(list(current.get(field) or []), desired):
                    changes[field] = desired
            elif not same(current.get(field), value):
                changes[field] = value
        return changes

    def upsert(self, name: str, stream: ErpNextStreamConfig,
               rows: Sequence[Row]) -> list[WriteResult]:
        ext = self._ext(name, stream)
        keys = [str(r.get(ext) or "") for r in rows]
        existing = self.lookup(name, stream, [k for k in keys if k])
        results = []
        for key, row in zip(keys, rows, strict=True):
            if not key:
                results.append(WriteResult("", WriteAction.FAILED,
                                           error=f"{ext} is empty: records are matched on it"))
                continue
            results.append(self._write(stream, key, row, existing.get(key)))
        return results

    def _write(self, stream: ErpNextStreamConfig, key: str, row: Row,
               current: Row | None) -> WriteResult:
        maybe_created = False
        for attempt in range(1, self.attempts + 1):
            if current is None:
                body = {**row, **({"docstatus": 1} if stream.submit else {})}
                method, path, action = "POST", resource(stream.doctype), WriteAction.CREATED
            else:
                changes = self._changes(stream, current, row)
                if not changes and not (stream.submit and current.get("docstatus") == 0):
                    action = WriteAction.CREATED if maybe_created else WriteAction.UNCHANGED
                    return WriteResult(key, action, target_id=str(current["name"]))
                if current.get("docstatus") == 1 and changes:
                    return WriteResult(key, WriteAction.FAILED, target_id=str(current["name"]),
                                       error=f"{stream.doctype} {current['name']} is submitted "
                                       f"and cannot change ({', '.join(sorted(changes))}); "
                                       "cancel and amend it in ERPNext")
                body = {**changes, **({"docstatus": 1} if stream.submit else {})}
                method, path = "PUT", resource(stream.doctype, str(current["name"]))
                action = WriteAction.CREATED if maybe_created else WriteAction.UPDATED
            try:
                resp = self.client.request(method, path, data=json.dumps(body, default=_wire),
                                           headers={"Content-Type": "application/json",
                                                    "Accept": "application/json"})
                if resp.status_code < 400:
                    return WriteResult(key, action, target_id=str(decode_json(resp)["data"]
                                                                   ["name"]))
            except (RetriableError, ValueError, KeyError, TypeError) as exc:
                if attempt == self.attempts:
                    raise RetriableError(f"ERPNext: {method} {stream.doctype} {key!r} failed "
                                         f"{attempt} times: {exc}") from None
                log.info("ERPNext: answer to %s %s lost (%s); looking it up again",
                         method, key, exc)
                maybe_created = maybe_created or method == "POST"
                retry = self.reader.client.settings.retry
                delay = backoff_delay(attempt, retry.backoff_base, retry.backoff_max)
                if delay:
                    self.client.sleep(delay)
                current = self.lookup("", stream, [key]).get(key)
                continue
            return WriteResult(key, WriteAction.FAILED,
                               target_id=str(current["name"]) if current else None,
                               error=frappe_error(resp.status_code, resp.content))
        raise AssertionError("unreachable")

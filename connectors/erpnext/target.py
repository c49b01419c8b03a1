"""Writing to ERPNext: create with ``POST``, update with ``PUT``, one record per call.

Records are matched on the stream's ``external_id_field`` (a unique custom
field such as ``custom_crm_id``). A new document is ``POST``ed, and submitted
at once (``docstatus: 1``) for streams with ``submit``; an existing draft is
updated with ``PUT`` of the changed fields only (a child table is sent whole:
Frappe replaces its rows). A submitted document cannot change any more: a
difference is reported as a failed record, for a steward to cancel and amend.
The stream's ``contact`` and ``addresses`` row fields go to linked Contact and
Address documents (:mod:`crm2erp.connectors.erpnext.links`).

Frappe refusals (``exc_type`` plus ``_server_messages``) become the failed
record's reason. Every request is retried by the HTTP client with the
connection's ``retry`` budget. A ``POST`` whose answer was lost and that is
sent again meets the unique external id (``409 DuplicateEntryError``): the
record is looked up and compared instead, so a create is never doubled.

Deletes work on the ids the engine holds (the document ``name``): ``DELETE``,
or ``archive_field = 1`` (Customer ``disabled``). An id that is not there
(``404 DoesNotExistError``; a ``DELETE`` reads the document first) is a failed
outcome, not a done one; a ``DELETE`` that meets a 404 after that read was sent
again after its answer was lost, and is done.
"""

from __future__ import annotations

__all__ = ["ErpNextWriter"]

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import requests

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.erpnext.api import frappe_error
from crm2erp.connectors.erpnext.config import ErpNextConfig, ErpNextStreamConfig
from crm2erp.connectors.erpnext.links import LinkedRecords, LinkError
from crm2erp.connectors.erpnext.source import ErpNextReader, resource
from crm2erp.connectors.toolkit.targets import KeyedWriter, rows_by_key
from crm2erp.connectors.toolkit.values import changed_fields, same_value
from crm2erp.connectors.toolkit.writer import delete_in_batches, json_default, write_in_batches
from crm2erp.errors import ConfigError
from crm2erp.http import HttpClient, decode_json

# Frappe casts Float/Currency fields with flt(); datetimes are site-local text
_wire = json_default("ERPNext", moment=lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S"))


def same(current: Any, desired: Any) -> bool:
    """Whether the value ERPNext holds already equals the one we would send."""
    return same_value(current, _wire(desired) if isinstance(desired, dt.date) else desired)


def _refusal(key: str, target: str | None, resp: requests.Response) -> WriteResult:
    return WriteResult(key, WriteAction.FAILED, target,
                       error=frappe_error(resp.status_code, resp.content))


class ErpNextWriter(KeyedWriter):
    system = "ERPNext"
    key_setting = "external_id_field"
    key_hint = ("the stream is read-only: set one (a unique custom field such as "
                "custom_crm_id) to write it")

    def __init__(self, client: HttpClient, config: ErpNextConfig, reader: ErpNextReader):
        super().__init__(client, config, reader)
        self.links = LinkedRecords(reader, self.send, same)

    def send(self, method: str, path: str, body: dict | None) -> requests.Response:
        return self.client.request(method, path, data=None if body is None else json.dumps(
            body, default=_wire), headers={"Content-Type": "application/json",
                                           "Accept": "application/json"})

    def lookup(self, name: str, stream: ErpNextStreamConfig,
               keys: Sequence[str]) -> Mapping[str, Row]:
        ext = self.write_key(name, stream)

        def fetch(chunk: list[str]) -> Iterator[tuple[str, Row]]:
            for row in self.reader.list(stream.doctype, ["*"], [[ext, "in", chunk]],
                                        "name asc"):
                if stream.children:
                    row = self.reader.document(stream.doctype, row["name"]) or row
                yield str(row[ext]), row

        return rows_by_key(keys, 100, fetch)

    def upsert(self, name: str, stream: ErpNextStreamConfig, rows: Sequence[Row], *,
               partial: bool = False) -> list[WriteResult]:
        """Write ``rows``; their contact and address fields too: one that is missing
        is empty (the integration's linked record goes), unless ``partial`` (rows
        carrying only the fields to change, as write-back sends)."""
        ext = self.write_key(name, stream)

        def send(chunk: list[Row]) -> list[WriteResult]:
            existing = self.lookup(name, stream, [str(row[ext]) for row in chunk])
            return [self._write_row(stream, str(row[ext]), row, existing.get(str(row[ext])),
                                    partial) for row in chunk]

        return write_in_batches(rows, lambda row: row.get(ext) or None, send, size=100,
                                missing=f"{ext} is empty: records are matched on it")

    def update(self, name: str, stream: ErpNextStreamConfig,
               rows: Sequence[Row]) -> list[WriteResult]:
        """Like upsert, but a contact or address field the rows leave out stays as it is."""
        return self.upsert(name, stream, rows, partial=True)

    def _write_row(self, stream: ErpNextStreamConfig, key: str, row: Row, current: Row | None,
                   partial: bool) -> WriteResult:
        """The record, then its contact and addresses (:meth:`LinkedRecords.write`);
        ``UPDATED`` when only those changed."""
        linked = (stream.contact, *stream.addresses)
        result = self._write(stream, key, {k: v for k, v in row.items() if k not in linked},
                             current)
        if not result.ok:
            return result
        try:
            changed = self.links.write(stream, str(result.target_id), row, partial)
        except LinkError as exc:
            return WriteResult(key, WriteAction.FAILED, result.target_id,
                               error=f"{stream.doctype} {result.target_id} was written, but "
                               f"its {exc}")
        if changed and result.action is WriteAction.UNCHANGED:
            return WriteResult(key, WriteAction.UPDATED, result.target_id)
        return result

    def _write(self, stream: ErpNextStreamConfig, key: str, row: Row,
               current: Row | None) -> WriteResult:
        submit = {"docstatus": 1} if stream.submit else {}
        recovered = current is None
        if current is None:
            resp = self.send("POST", resource(stream.doctype), {**row, **submit})
            if resp.status_code < 400:
                return WriteResult(key, WriteAction.CREATED,
                                   target_id=str(decode_json(resp)["data"]["name"]))
            current = self.lookup("", stream, [key]).get(key) \
                if resp.status_code == 409 else None
            if current is None:
                return _refusal(key, None, resp)
            # a create sent again after its answer was lost: it is there, compare it
        changes = changed_fields(current, row, tables=stream.children, same=same)
        target = str(current["name"])
        if changes and current.get("docstatus") == 1:
            return WriteResult(key, WriteAction.FAILED, target_id=target,
                               error=f"{stream.doctype} {target} is submitted "
                               f"and cannot change ({', '.join(sorted(changes))}); "
                               "cancel and amend it in ERPNext")
        action = WriteAction.CREATED if recovered else WriteAction.UNCHANGED
        if changes or (stream.submit and current.get("docstatus") == 0):
            resp = self.send("PUT", resource(stream.doctype, target), {**changes, **submit})
            if resp.status_code >= 400:
                return _refusal(key, target, resp)
            action = WriteAction.CREATED if recovered else WriteAction.UPDATED
        return WriteResult(key, action, target_id=target)

    def delete(self, name: str, stream: ErpNextStreamConfig, ids: Sequence[str],
               mode: DeleteMode) -> list[WriteResult]:
        """Delete or archive documents by name, each name once (a repeated name shares
        the answer of the first); a name that is not there fails."""
        if mode is DeleteMode.ARCHIVE and not stream.archive_field:
            raise ConfigError(f"ERPNext stream {name!r} cannot archive: set archive_field "
                              "(a Check field such as disabled) or use delete_policy: delete")
        return delete_in_batches(ids, mode, lambda chunk: [self._delete(stream, chunk[0], mode)],
                                 size=1)

    def _delete(self, stream: ErpNextStreamConfig, doc_name: str,
                mode: DeleteMode) -> WriteResult:
        path = resource(stream.doctype, doc_name)
        if mode is DeleteMode.ARCHIVE:
            resp = self.send("PUT", path, {stream.archive_field: 1})
            done = resp.status_code < 400
        elif self.reader.document(stream.doctype, doc_name) is None:
            return WriteResult.not_found(doc_name, stream.doctype)
        else:
            resp = self.send("DELETE", path, None)
            # 404: there a moment ago, so gone by a DELETE sent again after its answer
            # was lost
            done = resp.status_code < 400 or resp.status_code == 404
        if done:
            return WriteResult(doc_name, WriteAction.UPDATED, doc_name)
        if resp.status_code == 404:
            return WriteResult.not_found(doc_name, stream.doctype)
        return _refusal(doc_name, doc_name, resp)

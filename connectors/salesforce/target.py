"""Writing to Salesforce: sObject Collections upsert on an external id field.

``PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExternalIdField}``
takes up to 200 records and answers one ``{id, success, created, errors}``
per record, in order. Upserting by external id is what makes a retried batch
harmless: the second attempt finds the records the first one created.
With ``allOrNone: false`` (the default) a refused record comes back as
``WriteResult(FAILED, error)`` and the others are still written; with
``allOrNone: true`` the records rolled back only because of it
(``ALL_OR_NONE_OPERATION_ROLLED_BACK``) are sent again without it. A record
refused for a field or sObject the org does not have stops the run with a
:class:`~crm2erp.errors.ConfigError`.

Deletes go through ``DELETE /services/data/vXX.X/composite/sobjects?ids=...&allOrNone=false``
(up to 200 Ids, one DeleteResult ``{id, success, errors}`` per Id, in order);
archiving sets the stream's ``archive`` field through the update below. An Id
the org answers with ``ENTITY_IS_DELETED``, ``NOT_FOUND`` or
``INVALID_CROSS_REFERENCE_KEY`` is "not found" (a failed result the engine
dead-letters), never counted as done.

Write-back changes fields of records that exist, by their Id, through
``PATCH /services/data/vXX.X/composite/sobjects`` (records with
``attributes.type`` and ``Id``, up to 200 per call, one SaveResult each):
it never creates a record and needs no external id on the stream.
"""

from __future__ import annotations

__all__ = ["SalesforceWriter"]

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.salesforce.api import CONFIG_CODES, describe_errors
from crm2erp.connectors.salesforce.config import SalesforceConfig, StreamConfig
from crm2erp.connectors.salesforce.source import SalesforceReader
from crm2erp.connectors.toolkit.answers import item_answers, resend_rolled_back
from crm2erp.connectors.toolkit.targets import KeyedWriter, not_found, rows_by_key
from crm2erp.connectors.toolkit.writer import delete_in_batches, json_default, write_in_batches
from crm2erp.errors import ConfigError

#: record errors of a delete or archive by Id that mean the org has no such record
NOT_FOUND_CODES = {"ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY"}
#: a record of an allOrNone call that was fine but rolled back with a failed one
ROLLED_BACK = "ALL_OR_NONE_OPERATION_ROLLED_BACK"
_RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_wire = json_default("Salesforce")


def _codes(answer: dict[str, Any]) -> set[Any]:
    """The ``statusCode`` of each error of a record's result."""
    return {e.get("statusCode") for e in answer.get("errors") or []}


def _check_record_errors(answers: list[dict[str, Any]], what: str) -> None:
    """A record refused for a field or sObject the org does not have stops the run:
    every other record would be refused the same way."""
    for answer in answers:
        if _codes(answer) & CONFIG_CODES:
            raise ConfigError(f"Salesforce refused the {what}: {describe_errors(answer['errors'])}"
                              ". Fix the outbound mapping's field names, the stream's sobject, "
                              "or the integration user's field-level security.")


def _saved(key: str, answer: dict[str, Any], action: WriteAction, target_id: str | None,
           gone_from: str | None = None) -> WriteResult:
    """The result of one record; with ``gone_from`` (a delete or archive), a record the
    org does not have (:data:`NOT_FOUND_CODES`) is "not found" in that sObject."""
    if answer.get("success"):
        return WriteResult(key, action, target_id=target_id)
    error = describe_errors(answer.get("errors"))
    if gone_from and _codes(answer) & NOT_FOUND_CODES:
        return not_found(key, gone_from, error)
    return WriteResult(key, WriteAction.FAILED, error=error)


def _rolled_back_only(answer: dict[str, Any]) -> bool:
    return not answer.get("success") and _codes(answer) == {ROLLED_BACK}


class SalesforceWriter(KeyedWriter):
    system = "Salesforce"
    key_setting = "external_id_field"
    key_hint = "set one (an External ID field such as ERP_Id__c) to write to it"
    config: SalesforceConfig
    reader: SalesforceReader

    def upsert(self, name: str, stream: StreamConfig, rows: Sequence[Row]) -> list[WriteResult]:
        ext = self.write_key(name, stream)

        def send(chunk: list[Row]) -> list[WriteResult]:
            answers = self._save(stream, chunk, f"upsert into {stream.sobject}",
                                 f"/{stream.sobject}/{ext}")
            return [_saved(str(row[ext]), answer, WriteAction.CREATED if answer.get("created")
                           else WriteAction.UPDATED, answer.get("id"))
                    for row, answer in zip(chunk, answers, strict=True)]

        return write_in_batches(
            rows, lambda row: row.get(ext), send, size=self.config.write_batch_size,
            missing=f"{ext} is empty: the external id is required to upsert",
            refuse=lambda row: "remove the Id field: upsert matches on the external id only"
            if "Id" in row else None)

    def update(self, name: str, stream: StreamConfig, rows: Sequence[Row]) -> list[WriteResult]:
        """Set fields of existing records found by ``Id`` (sObject Collections update)."""

        def send(chunk: list[Row]) -> list[WriteResult]:
            answers = self._save(stream, chunk, f"update of {stream.sobject}")
            return [_saved(str(row["Id"]), answer, WriteAction.UPDATED, str(row["Id"]))
                    for row, answer in zip(chunk, answers, strict=True)]

        return write_in_batches(rows, lambda row: row.get("Id"), send,
                                size=self.config.write_batch_size,
                                missing=f"stream {name!r}: the row has no Id, which update needs")

    def _save(self, stream: StreamConfig, rows: list[Row], what: str,
              path: str = "") -> list[dict[str, Any]]:
        """One result per row, saved as a record of the stream's sObject by ``PATCH
        composite/sobjects<path>``. With ``all_or_none``, records that were only rolled
        back because another record failed are sent again without the failed ones, so
        only the records at fault end in the dead letters."""
        records = [{"attributes": {"type": stream.sobject},
                    **{k: v for k, v in row.items() if k != "attributes"}} for row in rows]

        def call(todo: list[dict[str, Any]]) -> list[dict[str, Any]]:
            body = json.dumps({"allOrNone": self.config.all_or_none, "records": todo},
                              default=_wire)
            return self._call("PATCH", path, what, len(todo), "records", data=body.encode(),
                              headers={"Content-Type": "application/json"})

        return resend_rolled_back(records, call, _rolled_back_only, system="Salesforce",
                                  what=what)

    def _call(self, method: str, path: str, what: str, count: int, noun: str,
              **request: Any) -> list[dict[str, Any]]:
        """The ``count`` results of one sObject Collections call (``composite/sobjects<path>``)."""
        resp = self.client.request(method, f"{self.config.api_path}/composite/sobjects{path}",
                                   **request)
        answers = item_answers("Salesforce", what, resp, count, noun, redirect_hint="; check "
                               "instance_url (your My Domain URL, https) and api_version")
        _check_record_errors(answers, what)
        return answers

    # -- delete and archive ---------------------------------------------------
    def delete(self, name: str, stream: StreamConfig, ids: Sequence[str],
               mode: DeleteMode) -> list[WriteResult]:
        archive = stream.archive
        if mode is DeleteMode.ARCHIVE and archive is None:
            raise ConfigError(f"Salesforce stream {name!r}: delete mode 'archive' needs "
                              "'archive: {field: ..., value: ...}' in the stream's config "
                              "(a field such as Active__c)")

        def send(chunk: list[str]) -> list[WriteResult]:
            if mode is DeleteMode.DELETE:
                answers = self._call("DELETE", "", f"delete of {stream.sobject}", len(chunk),
                                     "Ids", params={"ids": ",".join(chunk), "allOrNone": "false"})
            else:
                answers = self._save(stream, [{"Id": i, archive.field: archive.value}
                                              for i in chunk],
                                     f"archive of {stream.sobject} (sets {archive.field})")
            return [_saved(i, answer, WriteAction.UPDATED, i, gone_from=stream.sobject)
                    for i, answer in zip(chunk, answers, strict=True)]

        return delete_in_batches(
            ids, mode, send, size=self.config.write_batch_size,
            refuse=lambda record_id: None if _RECORD_ID.match(record_id) else
            f"{record_id!r} is not a Salesforce record Id (15 or 18 letters and digits)")

    def lookup(self, name: str, stream: StreamConfig, keys: Sequence[str]) -> Mapping[str, Row]:
        ext = self.write_key(name, stream)
        return rows_by_key(keys, 200, lambda chunk: (
            (str(r[ext]), r) for r in self.reader.select_in(stream, ext, chunk)))

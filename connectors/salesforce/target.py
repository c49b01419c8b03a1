"""Writing to Salesforce: sObject Collections upsert on an external id field.

``PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExternalIdField}``
takes up to 200 records and answers one ``{id, success, created, errors}``
per record, in order. Upserting by external id is what makes a retried batch
harmless: the second attempt finds the records the first one created.
With ``allOrNone: false`` (the default) a refused record comes back as
``WriteResult(FAILED, error)`` and the others are still written.

Write-back changes fields of records that exist, by their Id, through
``PATCH /services/data/vXX.X/composite/sobjects`` (records with
``attributes.type`` and ``Id``, up to 200 per call, one SaveResult each):
it never creates a record and needs no external id on the stream.
"""

from __future__ import annotations

__all__ = ["SalesforceWriter"]

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from crm2erp.connectors.base import Row, WriteAction, WriteResult
from crm2erp.connectors.salesforce.config import SalesforceConfig, StreamConfig
from crm2erp.connectors.salesforce.soql import quote
from crm2erp.errors import ConfigError, FatalError
from crm2erp.http import HttpClient, NextLinkPaginator, decode_json


def _wire(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} to Salesforce")


def _describe_errors(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors or [{"statusCode": "UNKNOWN", "message": "no error details"}]:
        fields = f" (fields: {', '.join(err['fields'])})" if err.get("fields") else ""
        parts.append(f"{err.get('statusCode')}: {err.get('message')}{fields}")
    return "; ".join(parts)


class SalesforceWriter:
    def __init__(self, client: HttpClient, config: SalesforceConfig):
        self.client, self.config = client, config

    @staticmethod
    def _external_id(name: str, stream: StreamConfig) -> str:
        if not stream.external_id_field:
            raise ConfigError(f"Salesforce stream {name!r} has no external_id_field; set one "
                              "(an External ID field such as ERP_Id__c) to write to it")
        return stream.external_id_field

    def upsert(self, name: str, stream: StreamConfig, rows: Sequence[Row]) -> list[WriteResult]:
        ext = self._external_id(name, stream)
        results: list[WriteResult | None] = [None] * len(rows)
        pending: list[tuple[int, Row]] = []
        for i, row in enumerate(rows):
            key = row.get(ext)
            if key in (None, ""):
                results[i] = WriteResult("", WriteAction.FAILED, error=f"{ext} is empty: "
                                         "the external id is required to upsert")
            elif "Id" in row:
                results[i] = WriteResult(str(key), WriteAction.FAILED, error="remove the "
                                         "Id field: upsert matches on the external id only")
            else:
                pending.append((i, row))
        path = f"{self.config.api_path}/composite/sobjects/{stream.sobject}/{ext}"
        size = self.config.write_batch_size
        for start in range(0, len(pending), size):
            chunk = pending[start:start + size]
            records = [{"attributes": {"type": stream.sobject},
                        **{k: v for k, v in row.items() if k != "attributes"}}
                       for _, row in chunk]
            answers = self._send(path, records, f"upsert into {stream.sobject}")
            for (i, row), answer in zip(chunk, answers, strict=True):
                key = str(row[ext])
                if answer.get("success"):
                    action = WriteAction.CREATED if answer.get("created") else WriteAction.UPDATED
                    results[i] = WriteResult(key, action, target_id=answer.get("id"))
                else:
                    results[i] = WriteResult(key, WriteAction.FAILED,
                                             error=_describe_errors(answer.get("errors")))
        return [r for r in results if r is not None]

    def update(self, name: str, stream: StreamConfig, rows: Sequence[Row]) -> list[WriteResult]:
        """Set fields of existing records found by ``Id`` (sObject Collections update)."""
        results: list[WriteResult | None] = [None] * len(rows)
        pending: list[tuple[int, Row]] = []
        for i, row in enumerate(rows):
            if row.get("Id") in (None, ""):
                results[i] = WriteResult("", WriteAction.FAILED, error=f"stream {name!r}: "
                                         "the row has no Id, which update needs")
            else:
                pending.append((i, row))
        path = f"{self.config.api_path}/composite/sobjects"
        size = self.config.write_batch_size
        for start in range(0, len(pending), size):
            chunk = pending[start:start + size]
            records = [{"attributes": {"type": stream.sobject},
                        **{k: v for k, v in row.items() if k != "attributes"}}
                       for _, row in chunk]
            answers = self._send(path, records, f"update of {stream.sobject}")
            for (i, row), answer in zip(chunk, answers, strict=True):
                key = str(row["Id"])
                if answer.get("success"):
                    results[i] = WriteResult(key, WriteAction.UPDATED, target_id=key)
                else:
                    results[i] = WriteResult(key, WriteAction.FAILED,
                                             error=_describe_errors(answer.get("errors")))
        return [r for r in results if r is not None]

    def _send(self, path: str, records: list[dict[str, Any]], what: str) -> list[dict]:
        body = json.dumps({"allOrNone": self.config.all_or_none, "records": records},
                          default=_wire)
        resp = self.client.request("PATCH", path, data=body.encode(),
                                   headers={"Content-Type": "application/json"})
        if resp.status_code >= 400:
            raise FatalError(f"Salesforce {what} failed with HTTP {resp.status_code}: "
                             f"{resp.text[:300]}")
        answers = decode_json(resp)
        if not isinstance(answers, list) or len(answers) != len(records):
            raise FatalError(f"Salesforce {what} answered "
                             f"{len(answers) if isinstance(answers, list) else 'no'} "
                             f"results for {len(records)} records")
        return answers

    def lookup(self, name: str, stream: StreamConfig, keys: Sequence[str]) -> Mapping[str, Row]:
        ext = self._external_id(name, stream)
        found: dict[str, Row] = {}
        paginator = NextLinkPaginator("nextRecordsUrl", "records")
        wanted = list(dict.fromkeys(str(k) for k in keys))
        for start in range(0, len(wanted), 200):
            chunk = wanted[start:start + 200]
            soql = (f"SELECT {', '.join(stream.fields)} FROM {stream.sobject} "
                    f"WHERE {ext} IN ({', '.join(quote(k) for k in chunk)})")
            for page in paginator.pages(self.client, f"{self.config.api_path}/query",
                                        {"q": soql}):
                for record in paginator.records(page):
                    record.pop("attributes", None)
                    found[str(record[ext])] = record
        return found

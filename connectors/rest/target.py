"""Writing through a declared REST endpoint, in one of three shapes.

``upsert``
    one call per row to a path that contains the key
    (``PUT /v1/customers/by-ref/{key}``): idempotent by construction; a reply
    with ``created_status`` (201) means created, any other 2xx updated.
``lookup``
    ``GET find.path?find.param=<key>``, then ``update`` (path with ``{id}``)
    or ``create``. A create is not idempotent, so it is never retried blindly:
    after a failure in transit the key is looked up again first.
``batch``
    one call per ``batch.size`` rows; the reply holds one result per row, in
    order, with the id, a "created" flag and an error message.

A 4xx reply to one row's call fails that row (with the API's message, from
``error_path`` when set); auth failures, quotas and persistent 5xx stop the
run through the HTTP client's rules and the connection's ``errors``.

With ``write.verify`` a 2xx reply is not taken on trust: the stored record
(in the reply, or read back with a ``GET``) must hold every field sent with
the value sent, or the row fails with the fields the API did not store. An
API that answers 200 to a field it does not know is caught this way.
"""

from __future__ import annotations

__all__ = ["RestWriter", "unstored"]

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import requests

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.rest.config import RemoveConfig, RestConfig, RestStreamConfig, WriteConfig
from crm2erp.connectors.toolkit.batches import chunks
from crm2erp.connectors.toolkit.creates import create_unless_found
from crm2erp.connectors.toolkit.errors import error_body
from crm2erp.connectors.toolkit.fields import apply_rename, nest, unstored
from crm2erp.connectors.toolkit.listing import select_records
from crm2erp.connectors.toolkit.targets import not_found
from crm2erp.connectors.toolkit.writer import (
    delete_in_batches,
    json_default,
    required_setting,
    write_in_batches,
)
from crm2erp.errors import ConfigError, FatalError, RetriableError
from crm2erp.http import HttpClient, decode_json
from crm2erp.http.paginate import get_path


def _json_number(value: Decimal) -> int | float:
    whole = value == value.to_integral_value() and value.as_tuple().exponent >= 0
    return int(value) if whole else float(value)


def _instant(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


_wire = json_default("the API", decimal=_json_number, moment=_instant)


def _written(key: str, created: bool, target_id: Any) -> WriteResult:
    action = WriteAction.CREATED if created else WriteAction.UPDATED
    return WriteResult(key, action, str(target_id) if target_id is not None else key)


class RestWriter:
    def __init__(self, client: HttpClient, config: RestConfig, reader: Any = None):
        self.client, self.once = client, client.single_attempt()
        self.headers = {**config.headers, "Content-Type": "application/json"}

    @staticmethod
    def _config(name: str, stream: RestStreamConfig) -> WriteConfig:
        return required_setting(stream.write, f"REST stream {name!r} has no 'write' section; "
                                "add one (mode upsert, lookup or batch) to write to it")

    @staticmethod
    def _payload(stream: RestStreamConfig, row: Row) -> tuple[dict[str, Any], dict[str, Any]]:
        """The request body for ``row`` and the API's record in it: renamed, dotted names
        as nested objects, wrapped under ``write.body`` when set."""
        conf = stream.write
        rename = conf.rename if conf.rename is not None else {v: k for k, v in
                                                               stream.rename.items()}
        if not conf.send_key:
            row = {name: value for name, value in row.items() if name != conf.key}
        record = nest(apply_rename(row, rename))
        return ({conf.body: record} if conf.body else record), record

    def _verified(self, conf: WriteConfig, sent: dict[str, Any], reply: Any,
                  result: WriteResult) -> WriteResult:
        """``result``, or a failure when the stored record does not hold what was sent."""
        spec = conf.verify
        if spec is None or not result.ok:
            return result
        where = "the reply"
        if spec.read_back:
            path = spec.read_back.replace("{id}", quote(str(result.target_id), safe="")) \
                .replace("{key}", quote(result.key, safe=""))
            resp = self.client.request("GET", path, headers=self.headers)
            if resp.status_code >= 400:
                return WriteResult(result.key, WriteAction.FAILED, error=(
                    f"written, but reading it back (GET {path}) answered "
                    f"{self._error(conf, resp)}"))
            reply, where = decode_json(resp), f"the reply of GET {path}"
        stored = get_path(reply, spec.record)
        if not isinstance(stored, Mapping):
            keys = ", ".join(map(str, reply)) if isinstance(reply, Mapping) else \
                type(reply).__name__
            raise ConfigError(f"{self.client.name}: write.verify: {where} has no record at "
                              f"{spec.record!r} (it holds: {keys}); fix write.verify.record")
        missing = unstored(sent, stored, spec.ignore, default=_wire)
        if missing:
            return WriteResult(result.key, WriteAction.FAILED, error=(
                "the API accepted the write but did not store " + "; ".join(missing)))
        return result

    def _error(self, conf: WriteConfig, resp: requests.Response) -> str:
        message = get_path(error_body(resp), conf.error_path) if conf.error_path else None
        return f"HTTP {resp.status_code}: {message or resp.text[:300] or resp.reason}"

    def _send(self, method: str, path: str, payload: Any, *, once: bool = False):
        client = self.once if once else self.client
        resp = client.request(method, path, headers=self.headers, data=None if payload is None
                              else json.dumps(payload, default=_wire).encode())
        if resp.status_code >= 500:
            raise RetriableError(f"{client.name}: {method} {path} answered HTTP "
                                 f"{resp.status_code}")
        return resp

    # -- modes -------------------------------------------------------------
    def upsert(self, name: str, stream: RestStreamConfig, rows: Sequence[Row]) -> list[WriteResult]:
        conf = self._config(name, stream)
        if conf.mode == "batch":
            return self._batch(conf, stream, list(rows))
        write_one = self._upsert_one if conf.mode == "upsert" else self._lookup_one
        return write_in_batches(
            rows, lambda row: row.get(conf.key), lambda chunk: [
                write_one(conf, stream, str(chunk[0][conf.key]), chunk[0])],
            size=1, missing=f"{conf.key} is empty: it is the upsert key")

    def _result(self, conf: WriteConfig, key: str, resp: requests.Response,
                created: bool, sent: dict[str, Any], target_id: Any = None) -> WriteResult:
        if resp.status_code >= 400:
            return WriteResult(key, WriteAction.FAILED, error=self._error(conf, resp))
        body = decode_json(resp) if resp.content else None
        if target_id is None:
            target_id = get_path(body, conf.id_path)
        return self._verified(conf, sent, body, _written(key, created, target_id))

    def _upsert_one(self, conf: WriteConfig, stream: RestStreamConfig, key: str,
                    row: Row) -> WriteResult:
        payload, sent = self._payload(stream, row)
        resp = self._send(conf.method, conf.path.replace("{key}", quote(key, safe="")), payload)
        return self._result(conf, key, resp, resp.status_code == conf.created_status, sent)

    def find(self, conf: WriteConfig, key: str) -> dict[str, Any] | None:
        found = self.client.get_json(conf.find.path, params={conf.find.param: key},
                                     headers=self.headers)
        if isinstance(found, Mapping) and isinstance(get_path(found, conf.find.records), dict):
            return get_path(found, conf.find.records)
        records = select_records(found, conf.find.records,
                                 f"{self.client.name}: write.find: GET {conf.find.path}")
        return records[0] if records else None

    def _lookup_one(self, conf: WriteConfig, stream: RestStreamConfig, key: str,
                    row: Row) -> WriteResult:
        """Find by key, then update or create; a create lost in transit is looked up
        before it is sent again (:mod:`~crm2erp.connectors.toolkit.creates`)."""
        payload, sent = self._payload(stream, row)
        existing = self.find(conf, key)
        if existing is None:
            def create(_: list[str]) -> dict[str, WriteResult]:
                resp = self._send(conf.create.method, conf.create.path, payload, once=True)
                return {key: self._result(conf, key, resp, True, sent)}

            def found(_: list[str]) -> dict[str, dict[str, Any]]:
                record = self.find(conf, key)
                return {} if record is None else {key: record}

            outcome = create_unless_found([key], create, found, client=self.client,
                                          what=f"create of {key!r}")[key]
            if isinstance(outcome, WriteResult):
                return outcome
            existing = outcome
        target_id = get_path(existing, conf.find.id_field)
        path = conf.update.path.replace("{id}", quote(str(target_id), safe="")) \
            .replace("{key}", quote(key, safe=""))
        resp = self._send(conf.update.method, path, payload)
        return self._result(conf, key, resp, False, sent, target_id)

    def _batch(self, conf: WriteConfig, stream: RestStreamConfig,
               rows: list[Row]) -> list[WriteResult]:
        spec = conf.batch
        results: list[WriteResult] = []
        for chunk in chunks(rows, spec.size):
            keys = [str(r.get(conf.key) or "") for r in chunk]
            records = [self._payload(stream, r)[1] for r in chunk]
            resp = self._send(spec.method, spec.path, {spec.records_field: records})
            if resp.status_code >= 400:
                error = self._error(conf, resp)
                results.extend(WriteResult(k, WriteAction.FAILED, error=error) for k in keys)
                continue
            answers = get_path(decode_json(resp), spec.results)
            if not isinstance(answers, list) or len(answers) != len(chunk):
                raise FatalError(f"batch write to {spec.path} answered "
                                 f"{len(answers) if isinstance(answers, list) else 'no'} "
                                 f"results for {len(chunk)} records; check batch.results")
            results.extend(self._answer(conf, key, record, answer)
                           for key, record, answer in zip(keys, records, answers, strict=True))
        return results

    def _answer(self, conf: WriteConfig, key: str, record: dict[str, Any],
                answer: Any) -> WriteResult:
        """The result of one record of a batch write, from its ``answer``."""
        spec = conf.batch
        error = get_path(answer, spec.error_path) if spec.error_path else None
        if error:
            return WriteResult(key, WriteAction.FAILED, error=str(error))
        created = bool(get_path(answer, spec.created_path)) if spec.created_path else False
        return self._verified(conf, record, answer,
                              _written(key, created, get_path(answer, conf.id_path)))

    # -- delete and archive --------------------------------------------------
    def delete(self, name: str, stream: RestStreamConfig, ids: Sequence[str],
               mode: DeleteMode) -> list[WriteResult]:
        """One configured request per id (``write.delete`` or ``write.archive``); IGNORE
        sends nothing, so it needs neither."""
        if mode is not DeleteMode.IGNORE:
            conf = self._config(name, stream)
            spec = required_setting(
                conf.delete if mode is DeleteMode.DELETE else conf.archive,
                f"REST stream {name!r}: delete_policy {mode.value} needs "
                f"'write.{mode.value}: {{method: ..., path: \".../{{id}}\"}}' "
                "in the stream's config")
        return delete_in_batches(ids, mode, lambda chunk: [self._delete_one(conf, spec, chunk[0])],
                                 size=1)

    def _delete_one(self, conf: WriteConfig, spec: RemoveConfig, record_id: str) -> WriteResult:
        path = spec.path.replace("{id}", quote(record_id, safe=""))
        resp = self._send(spec.method, path, spec.body)
        if resp.status_code in spec.not_found:
            return not_found(record_id, f"{self.client.name} {spec.path}",
                             f"{spec.method} {path} answered {self._error(conf, resp)}")
        if resp.status_code >= 400:
            return WriteResult(record_id, WriteAction.FAILED,
                               error=f"{spec.method} {path}: {self._error(conf, resp)}")
        return WriteResult(record_id, WriteAction.UPDATED, target_id=record_id)

    def lookup(self, name: str, stream: RestStreamConfig,
               keys: Sequence[str]) -> Mapping[str, Row]:
        conf = self._config(name, stream)
        if conf.find is None:
            raise NotImplementedError(f"REST stream {name!r} has no write.find to look up by")
        found = {}
        for key in keys:
            record = self.find(conf, str(key))
            if record is not None:
                found[str(key)] = apply_rename(record, stream.rename)
        return found

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
"""

from __future__ import annotations

__all__ = ["RestWriter"]

import datetime as dt
import json
import logging
import random
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import requests

from crm2erp.connectors.base import Row, WriteAction, WriteResult
from crm2erp.connectors.rest.config import RestStreamConfig, WriteConfig
from crm2erp.connectors.rest.source import apply_rename
from crm2erp.errors import ConfigError, FatalError, RetriableError
from crm2erp.http import HttpClient, decode_json
from crm2erp.http.paginate import get_path
from crm2erp.http.retry import backoff_delay

log = logging.getLogger(__name__)


def _wire(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent \
            >= 0 else float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def _body(payload: Any) -> bytes:
    return json.dumps(payload, default=_wire).encode()


class RestWriter:
    def __init__(self, client: HttpClient, once: HttpClient, headers: dict[str, str]):
        self.client, self.once = client, once
        self.headers = {**headers, "Content-Type": "application/json"}
        self._rng = random.Random()

    @staticmethod
    def _config(name: str, stream: RestStreamConfig) -> WriteConfig:
        if stream.write is None:
            raise ConfigError(f"REST stream {name!r} has no 'write' section; add one "
                              "(mode upsert, lookup or batch) to write to it")
        return stream.write

    def _outgoing(self, stream: RestStreamConfig, row: Row) -> dict[str, Any]:
        conf = stream.write
        rename = conf.rename if conf.rename is not None else {v: k for k, v in
                                                               stream.rename.items()}
        record = apply_rename(row, rename)
        return {conf.body: record} if conf.body else record

    def _error(self, conf: WriteConfig, resp: requests.Response) -> str:
        try:
            body = decode_json(resp)
        except ValueError:
            body = None
        message = get_path(body, conf.error_path) if conf.error_path else None
        return f"HTTP {resp.status_code}: {message or resp.text[:300] or resp.reason}"

    def _send(self, method: str, path: str, payload: Any, *, once: bool = False):
        client = self.once if once else self.client
        resp = client.request(method, path, data=_body(payload), headers=self.headers)
        if resp.status_code >= 500:
            raise RetriableError(f"{client.name}: {method} {path} answered HTTP "
                                 f"{resp.status_code}")
        return resp

    # -- modes -------------------------------------------------------------
    def upsert(self, name: str, stream: RestStreamConfig, rows: Sequence[Row]) -> list[WriteResult]:
        conf = self._config(name, stream)
        results: list[WriteResult] = []
        if conf.mode == "batch":
            return self._batch(conf, stream, list(rows))
        for row in rows:
            key = row.get(conf.key)
            if key in (None, ""):
                results.append(WriteResult("", WriteAction.FAILED,
                                           error=f"{conf.key} is empty: it is the upsert key"))
            elif conf.mode == "upsert":
                results.append(self._upsert_one(conf, stream, str(key), row))
            else:
                results.append(self._lookup_one(conf, stream, str(key), row))
        return results

    def _result(self, conf: WriteConfig, key: str, resp: requests.Response,
                created: bool) -> WriteResult:
        if resp.status_code >= 400:
            return WriteResult(key, WriteAction.FAILED, error=self._error(conf, resp))
        body = decode_json(resp) if resp.content else None
        target_id = get_path(body, conf.id_path)
        action = WriteAction.CREATED if created else WriteAction.UPDATED
        return WriteResult(key, action, str(target_id) if target_id is not None else key)

    def _upsert_one(self, conf: WriteConfig, stream: RestStreamConfig, key: str,
                    row: Row) -> WriteResult:
        path = conf.path.replace("{key}", quote(key, safe=""))
        resp = self._send(conf.method, path, self._outgoing(stream, row))
        return self._result(conf, key, resp, resp.status_code == conf.created_status)

    def find(self, conf: WriteConfig, key: str) -> dict[str, Any] | None:
        found = self.client.get_json(conf.find.path, params={conf.find.param: key},
                                     headers=self.headers)
        records = get_path(found, conf.find.records)
        if isinstance(records, dict):
            records = [records]
        return records[0] if isinstance(records, list) and records else None

    def _lookup_one(self, conf: WriteConfig, stream: RestStreamConfig, key: str,
                    row: Row) -> WriteResult:
        payload = self._outgoing(stream, row)
        retry = self.client.settings.retry
        for attempt in range(1, retry.max_attempts + 1):
            existing = self.find(conf, key)
            if existing is not None:
                target_id = get_path(existing, conf.find.id_field)
                path = conf.update.path.replace("{id}", quote(str(target_id), safe="")) \
                    .replace("{key}", quote(key, safe=""))
                resp = self._send(conf.update.method, path, payload)
                result = self._result(conf, key, resp, created=False)
                if result.ok and target_id is not None:
                    result = WriteResult(key, result.action, str(target_id))
                return result
            try:
                resp = self._send(conf.create.method, conf.create.path, payload, once=True)
            except RetriableError as exc:
                if attempt == retry.max_attempts:
                    raise
                delay = backoff_delay(attempt, retry.backoff_base, retry.backoff_max, self._rng)
                log.info("create of %s failed in transit (%s); looking it up before "
                         "retrying in %.2fs", key, exc, delay)
                self.client.sleep(delay)
                continue
            return self._result(conf, key, resp, created=True)
        raise RetriableError(f"could not write {key!r} after {retry.max_attempts} attempts")

    def _batch(self, conf: WriteConfig, stream: RestStreamConfig,
               rows: list[Row]) -> list[WriteResult]:
        spec = conf.batch
        results: list[WriteResult] = []
        for start in range(0, len(rows), spec.size):
            chunk = rows[start:start + spec.size]
            keys = [str(r.get(conf.key) or "") for r in chunk]
            records = [apply_rename(r, conf.rename if conf.rename is not None else
                                    {v: k for k, v in stream.rename.items()}) for r in chunk]
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
            for key, answer in zip(keys, answers, strict=True):
                error = get_path(answer, spec.error_path) if spec.error_path else None
                if error:
                    results.append(WriteResult(key, WriteAction.FAILED, error=str(error)))
                    continue
                created = bool(get_path(answer, spec.created_path)) if spec.created_path \
                    else False
                target_id = get_path(answer, conf.id_path)
                results.append(WriteResult(key, WriteAction.CREATED if created else
                                           WriteAction.UPDATED,
                                           str(target_id) if target_id is not None else key))
        return results

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

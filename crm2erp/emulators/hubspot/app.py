"""A protocol-faithful HubSpot CRM emulator (WSGI), for tests, benchmarks and demos.

Served with :func:`crm2erp.emulators.kernel.server.serve_wsgi` or from the command line::

    python -m crm2erp.emulators.hubspot.app --port 8702 --companies 500

Implemented, with HubSpot's URL shapes, bodies and headers:

* ``GET  /crm/v3/objects/{type}`` - ``limit`` (max 100), ``after``, ``properties``,
  ``associations``, ``archived``; ``paging.next.after``;
* ``POST /crm/v3/objects/{type}/search`` - ``filterGroups`` (EQ, NEQ, GT, GTE, LT,
  LTE, IN, HAS_PROPERTY, NOT_HAS_PROPERTY), one sort, ``limit`` (max 200),
  ``after``, and the result cap (``search_cap``, 10,000 like HubSpot); rows
  sharing a sort value come back in an arbitrary (but stable) order;
* ``POST /crm/v3/objects/{type}/batch/upsert`` (``idProperty``, max 100 inputs,
  multi-status 207 with ``objectWriteTraceId``) and ``.../batch/read``;
* ``POST /crm/v3/objects/{type}/batch/update`` (by record id, max 100 inputs,
  207 with ``OBJECT_NOT_FOUND`` for ids that do not exist);
* ``POST /crm/v3/objects/{type}/batch/archive`` (``{"inputs": [{"id"}]}``, max 100):
  ``204 No Content`` whether or not the ids exist, as HubSpot answers;
* ``POST /crm/v4/associations/{from}/{to}/batch/read``;
* ``GET  /crm/v3/properties/{type}``;
* private app token auth (401 ``INVALID_AUTHENTICATION``), the
  ``X-HubSpot-RateLimit-*`` headers, a daily limit (429 ``policyName: DAILY``);
* faults, deterministic by seed: 429 ``TEN_SECONDLY_ROLLING`` with
  ``Retry-After``, 500, 503, cut bodies and slow responses at
  ``fault_rate``/``slow_rate``, or queued with :meth:`fail_next`.
"""

from __future__ import annotations

__all__ = ["HubSpotEmulator", "make_app", "main", "TOKEN"]

import base64
import datetime as dt
import json
import logging
import random
import re
import threading
import uuid
import zlib
from decimal import Decimal
from typing import Any

from crm2erp.emulators.hubspot.portal import (
    OPTIONS,
    SCHEMA,
    UNIQUE,
    Portal,
    PropertyError,
    cursor_property,
)
from crm2erp.emulators.kernel.emulation import FaultInjection, query_fields, read_body, respond
from crm2erp.emulators.kernel.emulation import Reply as _Reply
from crm2erp.emulators.kernel.server import count, limit, run_emulator

log = logging.getLogger(__name__)
TOKEN = "pat-eu1-00000000-emulator-private-app-token"
_OPS = {"EQ", "NEQ", "GT", "GTE", "LT", "LTE", "IN", "NOT_IN", "HAS_PROPERTY",
        "NOT_HAS_PROPERTY"}


def _unknown_properties(kind: str, inputs: list[Any]) -> None:
    """HubSpot refuses a whole batch naming a property the object does not have (400)."""
    schema = SCHEMA.get(kind, {})
    for item in inputs:
        properties = (item.get("properties") or {}) if isinstance(item, dict) else {}
        for name in properties:
            if name not in schema:
                text = f'Property "{name}" does not exist'
                detail = [{"isValid": False, "message": text, "error": "PROPERTY_DOESNT_EXIST",
                           "name": name, "localizedErrorMessage": text, "portalId": 62515}]
                raise _error(400, "VALIDATION_ERROR", "Property values were not valid: "
                             + json.dumps(detail, separators=(",", ":")),
                             errors=[{"message": text, "code": "PROPERTY_DOESNT_EXIST",
                                      "context": {"propertyName": [name]}}])


def _batch_inputs(body: dict[str, Any]) -> list:
    """A batch call's ``inputs``: 1 to 100 of them, as HubSpot enforces."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise _error(400, "VALIDATION_ERROR", "inputs must be a non-empty list")
    if len(inputs) > 100:
        raise _error(400, "VALIDATION_ERROR", "Batch input size limit exceeded: at most "
                     "100 inputs are allowed")
    return inputs


def _error(status: int, category: str, message: str, **extra: Any) -> _Reply:
    return _Reply(status, {"status": "error", "message": message,
                           "correlationId": str(uuid.uuid4()), "category": category, **extra})


def _wire(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    return str(value)


def _now() -> str:
    return _wire(dt.datetime.now(dt.UTC))


class HubSpotEmulator(FaultInjection):
    """The WSGI app; its public methods are the test-control API (see EmulatorControl)."""

    def __init__(self, *, seed: int = 42, companies: int = 100, contacts_per_company: int = 2,
                 deals_per_company: int = 1, line_items_per_deal: int = 2, products: int = 20,
                 search_cap: int = 10_000, daily_limit: int = 250_000, fault_rate: float = 0.0,
                 fault_kinds: tuple = (429, 503, 500, "truncate"), retry_after: int = 1,
                 slow_rate: float = 0.0, slow_seconds: float = 0.2, same_stamp: int = 7,
                 product_skus: list[str] | None = None):
        self.portal = Portal(seed=seed, companies=companies, same_stamp=same_stamp,
                             contacts_per_company=contacts_per_company,
                             deals_per_company=deals_per_company,
                             line_items_per_deal=line_items_per_deal, products=products,
                             product_skus=product_skus)
        self.search_cap, self.daily_limit = search_cap, daily_limit
        self.base_url = "http://127.0.0.1"
        self.api_used = 0
        self.searches = 0
        self.tokens = {TOKEN}
        self._lock = threading.Lock()
        self.init_faults(random.Random(seed + 1), fault_rate=fault_rate, fault_kinds=fault_kinds,
                         retry_after=retry_after, slow_rate=slow_rate, slow_seconds=slow_seconds)
        self._ids = 0

    # -- control API (tests) --------------------------------------------
    def count(self, stream: str) -> int:
        return len(self.portal.records(stream))

    def touch(self, stream: str, n: int) -> list[str]:
        return self.portal.touch(stream, n)

    def delete_records(self, stream: str, n: int) -> list[str]:
        return self.portal.archive(stream, n)

    def sample_rows(self, stream: str, n: int) -> list[dict[str, Any]]:
        with self._lock:
            start, self._ids = self._ids, self._ids + n
        rows = []
        for i in range(start + 1, start + n + 1):
            if stream == "contacts":
                rows.append({"email": f"new.contact.{i}@example.com", "firstname": "Mai",
                             "lastname": f"Nguyen {i}"})
                continue
            row = {"erp_id": f"ERP-{stream}-{i:06d}"}
            row.update({"companies": {"name": f"New Company {i}", "city": "Berlin",
                                      "country": "Germany"},
                        "deals": {"dealname": f"New Deal {i}", "pipeline": "default",
                                  "dealstage": "qualifiedtobuy", "amount": "1000"},
                        "products": {"name": f"New Product {i}", "hs_sku": f"NEW-{i}",
                                     "price": "9.5"}}.get(stream, {"name": f"New {i}"}))
            rows.append(row)
        return rows

    def invalid_row(self, stream: str) -> dict[str, Any]:
        row = self.sample_rows(stream, 1)[0]
        bad = {"companies": ("industry", "NOT_AN_INDUSTRY"), "contacts": ("email", "not-an-email"),
               "deals": ("dealstage", "nowhere"), "products": ("price", "cheap")}
        name, value = bad.get(stream, ("no_such_property", "x"))
        row[name] = value
        return row

    def exhaust_limit(self) -> None:
        self.api_used = self.daily_limit

    def expire_tokens(self) -> None:
        """Private app tokens do not expire (they are rotated by hand): nothing to do."""

    # -- WSGI ------------------------------------------------------------
    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        query, raw = query_fields(environ), read_body(environ)
        headers: dict[str, str] = {}
        truncate = False
        self.count_request()
        try:
            auth = environ.get("HTTP_AUTHORIZATION", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
                raise _error(401, "INVALID_AUTHENTICATION", "Authentication credentials not "
                             "found. This API supports OAuth 2.0 authentication and you can "
                             "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
            truncate = self.take_fault(path, self._refusal)
            if self.api_used >= self.daily_limit:
                raise _error(429, "RATE_LIMITS", "You have reached your daily limit.",
                             errorType="RATE_LIMIT", policyName="DAILY",
                             groupName=f"private-app:{TOKEN[-8:]}")
            self.api_used += 1
            status, payload = self._route(method, path, query, raw)
        except _Reply as reply:
            status, payload, headers = reply.status, reply.body, reply.headers
        if status != 401:
            headers.update({"X-HubSpot-RateLimit-Daily": str(self.daily_limit),
                            "X-HubSpot-RateLimit-Daily-Remaining":
                                str(max(0, self.daily_limit - self.api_used)),
                            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                            "X-HubSpot-RateLimit-Max": "190",
                            "X-HubSpot-RateLimit-Remaining": "189"})
        return respond(start_response, status, payload, headers, truncate=truncate,
                       json_type="application/json;charset=utf-8")

    def _refusal(self, kind: int, retry_after: int | None) -> _Reply:
        if kind == 429:
            reply = _error(429, "RATE_LIMITS", "You have reached your ten_secondly_rolling "
                           "limit.", errorType="RATE_LIMIT", policyName="TEN_SECONDLY_ROLLING",
                           groupName=f"private-app:{TOKEN[-8:]}")
            reply.headers["Retry-After"] = self.retry_after_header(retry_after)
            return reply
        reply = _error(kind, "INTERNAL_ERROR" if kind == 500 else "SERVICE_UNAVAILABLE",
                       "internal error" if kind == 500 else "Service temporarily unavailable")
        if retry_after is not None:
            reply.headers["Retry-After"] = str(retry_after)
        return reply

    # -- routing -----------------------------------------------------------
    def _route(self, method: str, path: str, query: dict[str, str], raw: bytes):
        if m := re.fullmatch(r"/crm/v3/objects/(\w+)", path):
            self._kind(m[1])
            if method != "GET":
                raise _error(405, "VALIDATION_ERROR", f"{method} not allowed here")
            return 200, self._list(m[1], query)
        if m := re.fullmatch(r"/crm/v3/objects/(\w+)/batch/update", path):
            self._kind(m[1])
            if method != "POST":
                raise _error(405, "VALIDATION_ERROR", f"{method} not allowed here")
            return self._update(m[1], self._json(raw))
        if m := re.fullmatch(r"/crm/v3/objects/(\w+)/batch/archive", path):
            self._kind(m[1])
            if method != "POST":
                raise _error(405, "VALIDATION_ERROR", f"{method} not allowed here")
            self._archive(m[1], self._json(raw))
            return 204, None
        if m := re.fullmatch(r"/crm/v3/objects/(\w+)/(search|batch/upsert|batch/read)", path):
            self._kind(m[1])
            if method != "POST":
                raise _error(405, "VALIDATION_ERROR", f"{method} not allowed here")
            body = self._json(raw)
            if m[2] == "search":
                return 200, self._search(m[1], body)
            if m[2] == "batch/read":
                return 200, self._batch_read(m[1], body)
            return self._upsert(m[1], body)
        if m := re.fullmatch(r"/crm/v4/associations/(\w+)/(\w+)/batch/read", path):
            self._kind(m[1])
            self._kind(m[2])
            inputs = self._json(raw).get("inputs") or []
            results = []
            for item in inputs:
                to = self.portal.associated(m[1], m[2], str(item.get("id")))
                if to:
                    results.append({"from": {"id": str(item["id"])}, "to": [
                        {"toObjectId": int(t), "associationTypes": [
                            {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": None}]}
                        for t in to]})
            return 200, {"status": "COMPLETE", "results": results, "startedAt": _now(),
                         "completedAt": _now()}
        if m := re.fullmatch(r"/crm/v3/properties/(\w+)", path):
            return 200, {"results": [
                {"name": n, "label": n.replace("_", " ").title(), "type": t,
                 "fieldType": "select" if t == "enumeration" else "text",
                 "groupName": f"{m[1][:-1]}information", "hasUniqueValue": n in UNIQUE,
                 "options": [{"label": o, "value": o} for o in OPTIONS.get(n, [])]}
                for n, t in self._kind(m[1]).items()]}
        raise _error(404, "OBJECT_NOT_FOUND", f"Resource not found: {path}")

    @staticmethod
    def _kind(kind: str) -> dict[str, str]:
        if kind not in SCHEMA:
            raise _error(400, "VALIDATION_ERROR", f"Unable to infer object type from: {kind}")
        return SCHEMA[kind]

    @staticmethod
    def _json(raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise _error(400, "VALIDATION_ERROR", "Invalid input JSON on line 1") from None
        if not isinstance(body, dict):
            raise _error(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
        return body

    def _render(self, kind: str, record: dict[str, Any], props: list[str] | None) -> dict:
        names = ["hs_object_id", "createdate", cursor_property(kind)] + list(props or [])
        values = record["properties"]
        out = {"id": record["id"],
               "properties": {n: _wire(values.get(n)) for n in dict.fromkeys(names)
                              if n in values},
               "createdAt": _wire(record["createdAt"]), "updatedAt": _wire(record["updatedAt"]),
               "archived": record["archived"]}
        if record["archived"]:
            out["archivedAt"] = _wire(record["archivedAt"])
        return out

    # -- list --------------------------------------------------------------
    def _list(self, kind: str, query: dict[str, str]) -> dict[str, Any]:
        limit = int(query.get("limit") or 10)
        if not 1 <= limit <= 100:
            raise _error(400, "VALIDATION_ERROR", "limit must be between 1 and 100")
        archived = query.get("archived", "false") == "true"
        rows = sorted(self.portal.records(kind, archived=archived), key=lambda r: int(r["id"]))
        start = 0
        if query.get("after"):
            try:
                after_id = int(base64.urlsafe_b64decode(query["after"].encode()).decode())
            except ValueError:
                raise _error(400, "VALIDATION_ERROR", "invalid 'after' paging token") from None
            start = next((i for i, r in enumerate(rows) if int(r["id"]) >= after_id), len(rows))
        page = rows[start:start + limit]
        props = [p for p in (query.get("properties") or "").split(",") if p]
        assoc = [a for a in (query.get("associations") or "").split(",") if a]
        results = []
        for record in page:
            item = self._render(kind, record, props)
            found = {}
            for other in assoc:
                ids = self.portal.associated(kind, other, record["id"])
                if ids:
                    found[other] = {"results": [{"id": i, "type": f"{kind[:-1]}_to_{other[:-1]}"}
                                                for i in ids]}
            if found:
                item["associations"] = found
            results.append(item)
        out: dict[str, Any] = {"results": results}
        if start + limit < len(rows):
            nxt = base64.urlsafe_b64encode(rows[start + limit]["id"].encode()).decode()
            out["paging"] = {"next": {"after": nxt, "link": f"{self.base_url}/crm/v3/objects/"
                                      f"{kind}?after={nxt}"}}
        return out

    # -- search ------------------------------------------------------------
    def _value(self, kind: str, name: str, value: Any) -> Any:
        kinds = SCHEMA[kind]
        if value is None:
            return None
        if kinds.get(name) == "datetime":
            if isinstance(value, dt.datetime):
                return int(value.timestamp() * 1000)
            text = str(value)
            return int(text) if text.lstrip("-").isdigit() else int(
                dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
        if kinds.get(name) == "number":
            return Decimal(str(value))
        return str(value).lower()

    def _matches(self, kind: str, record: dict, flt: dict) -> bool:
        name, op = flt.get("propertyName"), flt.get("operator", "EQ")
        if op not in _OPS or name not in SCHEMA[kind]:
            raise _error(400, "VALIDATION_ERROR", f"There was a problem with the request: "
                         f"invalid filter {name} {op}")
        have = self._value(kind, name, record["properties"].get(name))
        if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            return (have is not None) == (op == "HAS_PROPERTY")
        if op in ("IN", "NOT_IN"):
            values = {self._value(kind, name, v) for v in flt.get("values") or []}
            return (have in values) == (op == "IN")
        want = self._value(kind, name, flt.get("value"))
        if have is None:
            return op == "NEQ"
        return {"EQ": have == want, "NEQ": have != want, "GT": have > want,
                "GTE": have >= want, "LT": have < want, "LTE": have <= want}[op]

    def _search(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.searches += 1
        limit = int(body.get("limit") or 10)
        after = int(body.get("after") or 0)
        if not 1 <= limit <= 200:
            raise _error(400, "VALIDATION_ERROR", "limit must be between 1 and 200")
        if after + limit > self.search_cap:
            raise _error(400, "VALIDATION_ERROR", f"There was a problem with the request. "
                         f"Paging beyond {self.search_cap} results is not supported")
        groups = body.get("filterGroups") or []
        rows = [r for r in self.portal.records(kind)
                if not groups or any(all(self._matches(kind, r, f) for f in g.get("filters") or [])
                                     for g in groups)]
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            raise _error(400, "VALIDATION_ERROR", "Only one sort is supported")

        def tiebreak(record):  # arbitrary but stable order among equal sort values
            return zlib.crc32(record["id"].encode())
        if sorts:
            name = sorts[0].get("propertyName")
            desc = sorts[0].get("direction") == "DESCENDING"
            rows.sort(key=tiebreak)
            rows.sort(key=lambda r: (self._value(kind, name, r["properties"].get(name)) is None,
                                     self._value(kind, name, r["properties"].get(name)) or 0),
                      reverse=desc)
        else:
            rows.sort(key=lambda r: int(r["id"]))
        page = rows[after:after + limit]
        out: dict[str, Any] = {"total": len(rows), "results": [
            self._render(kind, r, body.get("properties")) for r in page]}
        if after + limit < len(rows):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return out

    # -- batch write/read ----------------------------------------------------
    def _batch_read(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        id_prop = body.get("idProperty") or "hs_object_id"
        results = []
        for item in body.get("inputs") or []:
            record = self.portal.find(kind, id_prop, item.get("id"))
            if record is not None:
                results.append(self._render(kind, record, body.get("properties")))
        return {"status": "COMPLETE", "results": results, "startedAt": _now(),
                "completedAt": _now()}

    def _archive(self, kind: str, body: dict[str, Any]) -> None:
        """Batch archive by record id: 204 and no body, whether or not an id exists."""
        inputs = _batch_inputs(body)
        self.portal.archive_ids(kind, [str(i.get("id")) for i in inputs])

    def _update(self, kind: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Batch update by record id: missing ids and (with trace ids) refused values
        come back as errors of a 207; without trace ids a refused value fails the batch."""
        inputs = _batch_inputs(body)
        ids = [str(i.get("id")) for i in inputs]
        if len(set(ids)) != len(ids):
            raise _error(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
        _unknown_properties(kind, inputs)
        results, errors, missing = [], [], []
        for item in inputs:
            trace = item.get("objectWriteTraceId")
            try:
                record = self.portal.update(kind, str(item.get("id")),
                                            item.get("properties") or {})
            except PropertyError as exc:
                if trace is None:
                    raise _error(400, "VALIDATION_ERROR", f"Property values were not valid: "
                                 f"{exc}") from None
                errors.append({"status": "error", "category": "VALIDATION_ERROR",
                               "message": str(exc), "context": {"objectWriteTraceId": [trace]},
                               "errors": [{"message": str(exc), "code": exc.code}]})
                continue
            if record is None:
                missing.append(str(item.get("id")))
                continue
            out = self._render(kind, record, list(item.get("properties") or {}))
            if trace is not None:
                out["objectWriteTraceId"] = str(trace)
            results.append(out)
        if missing:
            errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                           "message": f"Could not get some {kind} objects, they may be deleted "
                                      "or not exist. Check that ids are valid.",
                           "context": {"ids": missing}})
        out = {"status": "COMPLETE", "results": results, "startedAt": _now(),
               "completedAt": _now()}
        if errors:
            out.update(numErrors=len(errors), errors=errors)
        return (207 if errors else 200), out

    def _upsert(self, kind: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        inputs = _batch_inputs(body)
        ids = [str(i.get("id")).lower() for i in inputs]
        if len(set(ids)) != len(ids):
            raise _error(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
        _unknown_properties(kind, inputs)
        results, errors = [], []
        for item in inputs:
            id_prop = item.get("idProperty")
            if not (id_prop in UNIQUE - {"hs_object_id"} or (kind == "contacts"
                                                              and id_prop == "email")):
                raise _error(400, "VALIDATION_ERROR", f"idProperty {id_prop!r} is not a "
                             f"property with unique values on {kind}")
            trace = item.get("objectWriteTraceId")
            try:
                record, created = self.portal.upsert(kind, id_prop, item.get("id"),
                                                     item.get("properties") or {})
            except PropertyError as exc:
                if trace is None:  # without trace ids HubSpot fails the whole batch
                    raise _error(400, "VALIDATION_ERROR", f"Property values were not valid: "
                                 f"{exc}") from None
                errors.append({"status": "error", "category": "VALIDATION_ERROR",
                               "message": f"Property values were not valid: {exc}",
                               "context": {"objectWriteTraceId": [str(trace)]},
                               "errors": [{"message": str(exc), "code": exc.code,
                                           "context": {"propertyName": [exc.name]}}]})
                continue
            item_out = self._render(kind, record, list(item.get("properties") or {}) +
                                    [id_prop])
            item_out["new"] = created
            if trace is not None:
                item_out["objectWriteTraceId"] = str(trace)
            results.append(item_out)
        out = {"status": "COMPLETE", "results": results, "startedAt": _now(),
               "completedAt": _now()}
        if errors:
            out.update(numErrors=len(errors), errors=errors)
        return (207 if errors else 200), out


def make_app(seed: int = 42, companies: int = 100, fault_rate: float = 0.0,
             **options: Any) -> HubSpotEmulator:
    """Build an emulator app (a WSGI callable with the test-control methods)."""
    return HubSpotEmulator(seed=seed, companies=companies, fault_rate=fault_rate, **options)


def main(argv: list[str] | None = None) -> int:
    """Run the emulator on a port until interrupted."""
    return run_emulator(argv, "crm2erp.emulators.hubspot.app",
                        "Run the HubSpot CRM API emulator.", 8702, make_app,
                        f"HubSpot emulator on {{url}} (private app token {TOKEN})",
                        {"companies": (count, 100), "search_cap": (limit, 10_000),
                         "daily_limit": (limit, 250_000)})


if __name__ == "__main__":
    raise SystemExit(main())

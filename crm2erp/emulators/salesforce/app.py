"""A protocol-faithful Salesforce REST emulator (WSGI), for tests, benchmarks and demos.

Served with :func:`crm2erp.emulators.kernel.server.serve_wsgi` or from the command line::

    python -m crm2erp.emulators.salesforce.app --port 8701 --accounts 500

Implemented, with Salesforce's URL shapes, bodies and headers:

* ``POST /services/oauth2/token`` - client_credentials and JWT bearer grants;
* ``GET  /services/data/vXX.X/limits`` and ``.../sobjects/{X}/describe``;
* ``GET  /services/data/vXX.X/query?q=`` and ``queryAll?q=`` with
  ``nextRecordsUrl`` paging (``Sforce-Query-Options: batchSize=N``, 200-2000);
* Bulk API 2.0 query jobs: ``POST/GET/DELETE .../jobs/query[/{id}[/results]]``
  with ``locator``/``maxRecords``, ``Sforce-Locator`` and ``Sforce-NumberOfRecords``;
* ``PATCH .../composite/sobjects/{X}/{ExternalIdField}`` (sObject Collections upsert),
  ``PATCH .../composite/sobjects`` (update by Id, ``attributes.type`` per record) and
  ``DELETE .../composite/sobjects?ids=...&allOrNone=`` (one DeleteResult per Id; a
  deleted or unknown Id is ``ENTITY_IS_DELETED``, a malformed one ``MALFORMED_ID``);
* error bodies ``[{"message", "errorCode"}]``, ``Sforce-Limit-Info: api-usage=N/M``,
  a daily API limit (``REQUEST_LIMIT_EXCEEDED``), session expiry (``INVALID_SESSION_ID``);
* faults, deterministic by seed: 429 with ``Retry-After``, 500, 503, cut bodies
  and slow responses at ``fault_rate``/``slow_rate``, or queued with :meth:`fail_next`.

The SOQL it understands is the subset in :mod:`.soql`.
"""

from __future__ import annotations

__all__ = ["SalesforceEmulator", "make_app", "main"]

import csv
import datetime as dt
import io
import json
import logging
import random
import re
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any

from crm2erp.emulators.kernel.emulation import (
    FaultInjection,
    form_fields,
    query_fields,
    read_body,
    respond,
)
from crm2erp.emulators.kernel.emulation import Reply as _Reply
from crm2erp.emulators.kernel.server import count, limit, run_emulator
from crm2erp.emulators.salesforce import soql
from crm2erp.emulators.salesforce.org import SCHEMA, STREAM_ALIASES, Org

log = logging.getLogger(__name__)
CLIENT_ID, CLIENT_SECRET = "emulator-client-id", "emulator-client-secret"
USERNAME = "integration@example.com"
_API = re.compile(r"^/services/data/v(?P<ver>\d+\.\d)(?P<rest>/.*)?$")


def _error(status: int, code: str, message: str) -> _Reply:
    return _Reply(status, [{"message": message, "errorCode": code}])


def _sf_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class SalesforceEmulator(FaultInjection):
    """The WSGI app; its public methods are the test-control API (see EmulatorControl)."""

    def __init__(self, *, seed: int = 42, accounts: int = 100, contacts_per_account: int = 2,
                 opportunities_per_account: int = 1, line_items_per_opportunity: int = 2,
                 products: int = 20, page_size: int = 2000, daily_limit: int = 100_000,
                 fault_rate: float = 0.0, fault_kinds: tuple = (429, 503, 500, "truncate"),
                 retry_after: int = 1, slow_rate: float = 0.0, slow_seconds: float = 0.2,
                 bulk_polls: int = 1, jwt_public_key: str | None = None,
                 jwt_audience: str = "https://login.salesforce.com",
                 product_codes: list[str] | None = None):
        self.org = Org(seed=seed, accounts=accounts, contacts_per_account=contacts_per_account,
                       opportunities_per_account=opportunities_per_account,
                       line_items_per_opportunity=line_items_per_opportunity, products=products,
                       product_codes=product_codes)
        self.page_size, self.daily_limit, self.bulk_polls = page_size, daily_limit, bulk_polls
        self.jwt_public_key, self.jwt_audience = jwt_public_key, jwt_audience
        self.base_url = "http://127.0.0.1"
        self.api_used = 0
        self._lock = threading.Lock()
        self.init_faults(random.Random(seed + 1), fault_rate=fault_rate, fault_kinds=fault_kinds,
                         retry_after=retry_after, slow_rate=slow_rate, slow_seconds=slow_seconds)
        self._tokens: set[str] = set()
        self._cursors: OrderedDict[str, tuple[list[dict], str]] = OrderedDict()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._ids = 0

    # -- control API (tests) --------------------------------------------
    @staticmethod
    def sobject(stream: str) -> str:
        return STREAM_ALIASES.get(stream, stream)

    def count(self, stream: str) -> int:
        return self.org.count(self.sobject(stream))

    def touch(self, stream: str, n: int) -> list[str]:
        return self.org.touch(self.sobject(stream), n)

    def delete_records(self, stream: str, n: int) -> list[str]:
        return self.org.delete(self.sobject(stream), n)

    def sample_rows(self, stream: str, n: int) -> list[dict[str, Any]]:
        sobject = self.sobject(stream)
        with self._lock:
            start, self._ids = self._ids, self._ids + n
        account = self.org.records("Account")[0]["Id"]
        extra = {"Account": {"BillingCity": "Berlin", "BillingCountry": "Germany"},
                 "Contact": {"LastName": "Nguyen", "FirstName": "Mai", "AccountId": account},
                 "Product2": {"ProductCode": "NEW"},
                 "Opportunity": {"StageName": "Prospecting", "CloseDate": "2025-06-30",
                                 "AccountId": account}}.get(sobject, {})
        return [{"ERP_Id__c": f"ERP-{sobject}-{start + i + 1:06d}",
                 **({"Name": f"New {sobject} {start + i + 1}"}
                    if "Name" in SCHEMA[sobject] else {}), **extra} for i in range(n)]

    def invalid_row(self, stream: str) -> dict[str, Any]:
        row = self.sample_rows(stream, 1)[0]
        for name in ("Name", "LastName"):
            row.pop(name, None)
        return row

    def exhaust_limit(self) -> None:
        self.api_used = self.daily_limit

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def issue_token(self) -> str:
        token = f"00DHn0000000001!{secrets.token_urlsafe(24)}"
        with self._lock:
            self._tokens.add(token)
        return token

    # -- WSGI ------------------------------------------------------------
    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        query, body = query_fields(environ), read_body(environ)
        headers: dict[str, str] = {}
        truncate = False
        self.count_request()
        try:
            if path == "/services/oauth2/token" and method == "POST":
                status, payload = self._token(body)
            else:
                truncate = bool(_API.match(path)) and self.take_fault(path, self._refusal)
                status, payload, headers = self._api(method, path, query, body, environ)
        except _Reply as reply:
            status, payload, headers = reply.status, reply.body, {**headers, **reply.headers}
        if _API.match(path):
            headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.daily_limit}"
        return respond(start_response, status, payload, headers, truncate=truncate,
                       json_type="application/json;charset=UTF-8",
                       text_type="text/csv; charset=UTF-8")

    def _refusal(self, kind: int, retry_after: int | None) -> _Reply:
        if kind == 429:
            return _Reply(429, [{"message": "Too many requests", "errorCode":
                                 "REQUEST_LIMIT_EXCEEDED_CONCURRENT"}],
                          {"Retry-After": self.retry_after_header(retry_after)})
        if kind == 503:
            reply = _error(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
            if retry_after is not None:
                reply.headers["Retry-After"] = str(retry_after)
            return reply
        return _error(kind, "UNKNOWN_EXCEPTION", "An unexpected error occurred.")

    # -- OAuth -------------------------------------------------------------
    def _token(self, body: bytes) -> tuple[int, Any]:
        form = form_fields(body)
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return 400, {"error": "invalid_client",
                             "error_description": "invalid client credentials"}
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            problem = self._check_jwt(form.get("assertion", ""))
            if problem:
                return 400, {"error": "invalid_grant", "error_description": problem}
        else:
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "grant type not supported"}
        token = self.issue_token()
        return 200, {"access_token": token, "instance_url": self.base_url,
                     "id": f"{self.base_url}/id/00DHn0000000001/005Hn0000000001",
                     "token_type": "Bearer", "issued_at": str(int(time.time() * 1000)),
                     "signature": secrets.token_urlsafe(32)}

    def _check_jwt(self, assertion: str) -> str | None:
        if not self.jwt_public_key:
            return "JWT bearer flow is not configured in this emulator (jwt_public_key)"
        import jwt

        try:
            claims = jwt.decode(assertion, self.jwt_public_key, algorithms=["RS256"],
                                audience=self.jwt_audience, options={"require": ["exp"]})
        except jwt.PyJWTError as exc:
            return f"invalid assertion: {exc}"
        if claims.get("iss") != CLIENT_ID:
            return "client identifier invalid"
        if claims.get("sub") != USERNAME:
            return "user hasn't approved this consumer"
        return None

    # -- REST API ----------------------------------------------------------
    def _api(self, method, path, query, body, environ) -> tuple[int, Any, dict[str, str]]:
        match = _API.match(path)
        if match is None:
            raise _error(404, "NOT_FOUND", "The requested resource does not exist")
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self._tokens:
            raise _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self.api_used >= self.daily_limit:
            raise _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        self.api_used += 1
        ver, rest = match["ver"], match["rest"] or "/"
        options = environ.get("HTTP_SFORCE_QUERY_OPTIONS", "")
        if rest == "/limits" and method == "GET":
            return 200, {"DailyApiRequests": {"Max": self.daily_limit,
                                              "Remaining": self.daily_limit - self.api_used}}, {}
        if m := re.fullmatch(r"/sobjects/(\w+)/describe", rest):
            return 200, self._describe(m[1]), {}
        if m := re.fullmatch(r"/(query|queryAll)", rest):
            return 200, self._query(ver, m[1], query.get("q", ""), options), {}
        if m := re.fullmatch(r"/(query|queryAll)/(01g\w+)-(\d+)", rest):
            return 200, self._page(ver, m[1], m[2], int(m[3])), {}
        if rest.startswith("/jobs/query"):
            return self._bulk(method, ver, rest, query, body)
        if rest == "/composite/sobjects" and method == "DELETE":
            return 200, self._delete(query), {}
        if rest == "/composite/sobjects":
            if method != "PATCH":
                raise _error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")
            return 200, self._update(body), {}
        if m := re.fullmatch(r"/composite/sobjects/(\w+)/(\w+)", rest):
            if method != "PATCH":
                raise _error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")
            return 200, self._upsert(m[1], m[2], body), {}
        raise _error(404, "NOT_FOUND", "The requested resource does not exist")

    def _schema(self, sobject: str) -> dict[str, str]:
        if sobject not in SCHEMA:
            raise _error(404, "NOT_FOUND", f"The requested resource does not exist: {sobject}")
        return SCHEMA[sobject]

    def _describe(self, sobject: str) -> dict[str, Any]:
        fields = [{"name": n, "type": t, "externalId": n == "ERP_Id__c",
                   "nillable": n != "Id", "createable": n not in ("Id", "SystemModstamp")}
                  for n, t in self._schema(sobject).items()]
        return {"name": sobject, "queryable": True, "fields": fields}

    def _parse(self, text: str) -> soql.Query:
        try:
            parsed = soql.parse(text)
        except soql.SoqlError as exc:
            raise _error(400, exc.code, str(exc)) from None
        if parsed.sobject not in SCHEMA:   # as Salesforce answers a query of an unknown type
            raise _error(400, "INVALID_TYPE", f"\n{text}\nERROR at Row:1\nsObject type "
                         f"'{parsed.sobject}' is not supported. If you are attempting to use "
                         "a custom object, be sure to append the '__c' after the entity name.")
        schema = SCHEMA[parsed.sobject]
        unknown = sorted(parsed.referenced() - set(schema))
        if unknown:
            raise _error(400, "INVALID_FIELD",
                         f"No such column '{unknown[0]}' on entity '{parsed.sobject}'")
        return parsed

    def _select(self, parsed: soql.Query, include_deleted: bool) -> list[dict[str, Any]]:
        rows = parsed.run(self.org.records(parsed.sobject, include_deleted=include_deleted))
        return [{"attributes": {"type": parsed.sobject,
                                "url": f"/sobjects/{parsed.sobject}/{r['Id']}"},
                 **{f: _sf_value(r[f]) for f in parsed.fields}} for r in rows]

    def _query(self, ver: str, kind: str, text: str, options: str) -> dict[str, Any]:
        parsed = self._parse(text)
        rows = self._select(parsed, kind == "queryAll")
        for row in rows:
            row["attributes"]["url"] = f"/services/data/v{ver}{row['attributes']['url']}"
        if parsed.count_only:
            return {"totalSize": len(rows), "done": True, "records": []}
        size = self.page_size
        if m := re.search(r"batchSize=(\d+)", options):
            size = min(2000, max(200, int(m[1])))
        with self._lock:
            locator = f"01gHn{len(self._cursors) + 1:010d}"
            while locator in self._cursors:
                locator = f"01gHn{secrets.randbelow(10**10):010d}"
            self._cursors[locator] = (rows, str(size))
            while len(self._cursors) > 200:
                self._cursors.popitem(last=False)
        return self._page(ver, kind, locator, 0)

    def _page(self, ver: str, kind: str, locator: str, offset: int) -> dict[str, Any]:
        with self._lock:
            found = self._cursors.get(locator)
        if found is None:
            raise _error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        rows, size = found[0], int(found[1])
        page = rows[offset: offset + size]
        done = offset + size >= len(rows)
        out: dict[str, Any] = {"totalSize": len(rows), "done": done, "records": page}
        if not done:
            out["nextRecordsUrl"] = f"/services/data/v{ver}/{kind}/{locator}-{offset + size}"
        return out

    # -- Bulk API 2.0 query jobs -------------------------------------------
    def _bulk(self, method, ver, rest, query, body) -> tuple[int, Any, dict[str, str]]:
        m = re.fullmatch(r"/jobs/query(?:/(750\w+))?(/results)?", rest)
        if not m:
            raise _error(404, "NOT_FOUND", "The requested resource does not exist")
        job_id, results = m[1], m[2]
        if job_id is None and method == "POST":
            spec = json.loads(body or b"{}")
            if spec.get("operation") not in ("query", "queryAll"):
                raise _error(400, "INVALIDJOB", "operation must be query or queryAll")
            parsed = self._parse(spec.get("query", ""))
            if parsed.order_by or parsed.limit is not None or parsed.count_only:
                raise _error(400, "INVALIDJOB",
                             "ORDER BY, LIMIT and COUNT() are not supported in Bulk API 2.0")
            rows = self._select(parsed, spec["operation"] == "queryAll")
            with self._lock:
                job_id = f"750Hn{len(self._jobs) + 1:010d}"
                self._jobs[job_id] = {"id": job_id, "operation": spec["operation"],
                                      "object": parsed.sobject, "state": "UploadComplete",
                                      "contentType": "CSV", "apiVersion": float(ver),
                                      "lineEnding": "LF", "columnDelimiter": "COMMA",
                                      "_rows": rows, "_fields": parsed.fields,
                                      "_polls": 0}
            return 200, self._job_info(job_id), {}
        job = self._jobs.get(job_id or "")
        if job is None:
            raise _error(404, "NOT_FOUND", f"Job {job_id} not found")
        if method == "DELETE" and not results:
            self._jobs.pop(job_id, None)
            return 204, None, {}
        if method == "GET" and not results:
            job["_polls"] += 1
            if job["_polls"] > self.bulk_polls:
                job["state"] = "JobComplete"
            elif job["state"] == "UploadComplete":
                job["state"] = "InProgress"
            return 200, self._job_info(job_id), {}
        if method == "GET" and results:
            if job["state"] != "JobComplete":
                raise _error(400, "INVALIDJOB", f"Job {job_id} is not complete")
            start = int(query.get("locator") or "0", 36)
            size = int(query.get("maxRecords") or 50_000)
            chunk = job["_rows"][start: start + size]
            out = io.StringIO()
            writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
            writer.writerow(job["_fields"])
            for row in chunk:
                writer.writerow(["" if row[f] is None else _csv_value(row[f])
                                 for f in job["_fields"]])
            more = start + size < len(job["_rows"])
            return 200, out.getvalue(), {
                "Sforce-Locator": _base36(start + size) if more else "null",
                "Sforce-NumberOfRecords": str(len(chunk))}
        raise _error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")

    def _job_info(self, job_id: str) -> dict[str, Any]:
        job = self._jobs[job_id]
        info = {k: v for k, v in job.items() if not k.startswith("_")}
        if job["state"] == "JobComplete":
            info["numberRecordsProcessed"] = len(job["_rows"])
        return info

    # -- sObject Collections upsert -------------------------------------------
    def _upsert(self, sobject: str, ext_field: str, body: bytes) -> list[dict[str, Any]]:
        schema = self._schema(sobject)
        if ext_field not in schema or ext_field != "ERP_Id__c":
            raise _error(400, "INVALID_FIELD",
                         f"Field {ext_field} is not an external id field of {sobject}")
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            raise _error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON") from None
        records = payload.get("records")
        if not isinstance(records, list) or not records:
            raise _error(400, "INVALID_INPUT", "records must be a non-empty list")
        if len(records) > 200:
            raise _error(400, "EXCEEDED_ID_LIMIT",
                         "record limit reached. cannot submit more than 200 records into this call")
        for rec in records:
            unknown = sorted(set(rec) - set(schema) - {"attributes"})
            if unknown:
                raise _error(400, "INVALID_FIELD",
                             f"No such column '{unknown[0]}' on sobject of type {sobject}")
        return self.org.upsert(sobject, ext_field, records, bool(payload.get("allOrNone")))


    def _delete(self, query: dict[str, str]) -> list[dict[str, Any]]:
        ids = [i for i in (query.get("ids") or "").split(",") if i]
        if not ids:
            raise _error(400, "INVALID_INPUT", "ids is required")
        if len(ids) > 200:
            raise _error(400, "EXCEEDED_ID_LIMIT",
                         "record limit reached. cannot submit more than 200 records into this call")
        return self.org.delete_ids(ids, query.get("allOrNone", "false").lower() == "true")

    def _update(self, body: bytes) -> list[dict[str, Any]]:
        records = self._records(body)
        for rec in records:
            sobject = (rec.get("attributes") or {}).get("type")
            if sobject in SCHEMA:
                unknown = sorted(set(rec) - set(SCHEMA[sobject]) - {"attributes"})
                if unknown:
                    raise _error(400, "INVALID_FIELD",
                                 f"No such column '{unknown[0]}' on sobject of type {sobject}")
        payload = json.loads(body)
        return self.org.update(records, bool(payload.get("allOrNone")))

    @staticmethod
    def _records(body: bytes) -> list[dict[str, Any]]:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            raise _error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON") from None
        records = payload.get("records") if isinstance(payload, dict) else None
        if not isinstance(records, list) or not records:
            raise _error(400, "INVALID_INPUT", "records must be a non-empty list")
        if len(records) > 200:
            raise _error(400, "EXCEEDED_ID_LIMIT",
                         "record limit reached. cannot submit more than 200 records into this call")
        return records


def _csv_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rem = divmod(number, 36)
        out = digits[rem] + out
        if number == 0:
            return out


def make_app(seed: int = 42, accounts: int = 100, fault_rate: float = 0.0,
             **options: Any) -> SalesforceEmulator:
    """Build an emulator app (a WSGI callable with the test-control methods)."""
    return SalesforceEmulator(seed=seed, accounts=accounts, fault_rate=fault_rate, **options)


def main(argv: list[str] | None = None) -> int:
    """Run the emulator on a port until interrupted."""
    return run_emulator(argv, "crm2erp.emulators.salesforce.app",
                        "Run the Salesforce REST emulator.", 8701, make_app,
                        "Salesforce emulator on {url} "
                        f"(client_id={CLIENT_ID}, client_secret={CLIENT_SECRET})",
                        {"accounts": (count, 100), "page_size": (count, 2000),
                         "daily_limit": (limit, 100_000)})


if __name__ == "__main__":
    raise SystemExit(main())

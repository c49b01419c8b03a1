"""A protocol-faithful Dataverse Web API emulator (WSGI), for tests, benchmarks and demos.

Served with :func:`crm2erp.emulators.kernel.server.serve_wsgi` or from the command line::

    python -m crm2erp.emulators.dynamics.app --port 8703 --accounts 500

Implemented, with the Web API's URL shapes, bodies and headers:

* ``POST /{tenant}/oauth2/v2.0/token`` - the Entra ID (Azure AD) client
  credentials grant with a ``{resource}/.default`` scope, AADSTS error bodies;
* ``GET /api/data/v9.2/WhoAmI``;
* ``GET /api/data/v9.2/{entity_set}`` with ``$select``, ``$filter`` (see
  :mod:`.odata`), ``$orderby``, ``$top``, ``Prefer: odata.maxpagesize=N``
  (``Preference-Applied``) and ``@odata.nextLink`` with a ``$skiptoken`` paging
  cookie; GUIDs sort in SQL Server order; ``audits`` records deletions;
* ``$expand=nav($select=a,b)`` on single-valued lookups (``productid`` of an
  opportunity product), the related row inlined under the navigation name;
* ``GET|PATCH|DELETE /api/data/v9.2/{entity_set}({key})`` - by GUID or
  alternate key, upsert with ``If-Match: *``/``If-None-Match: *`` semantics,
  ``204`` + ``OData-EntityId``, ``nav@odata.bind`` lookups;
* OData errors ``{"error": {"code": "0x...", "message"}}``, expired tokens (401),
  service protection 429 with ``Retry-After``; faults (429, 500, 503, cut
  bodies, slow responses) at ``fault_rate``/``slow_rate`` or queued with
  :meth:`fail_next`.
"""

from __future__ import annotations

__all__ = ["DynamicsEmulator", "make_app", "main", "CLIENT_ID", "CLIENT_SECRET", "TENANT_ID"]

import datetime as dt
import json
import logging
import random
import re
import secrets
import threading
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from crm2erp.emulators.dynamics.environment import TABLES, Environment, WriteError, guid_sort_key
from crm2erp.emulators.dynamics.odata import ODataError, parse_filter, parse_key
from crm2erp.emulators.kernel.emulation import FaultInjection, form_fields, read_body, respond
from crm2erp.emulators.kernel.emulation import Reply as _Reply
from crm2erp.emulators.kernel.server import count, run_emulator

log = logging.getLogger(__name__)
CLIENT_ID = "0b1c2d3e-0000-4000-8000-emulator0001"
CLIENT_SECRET = "emulator-client-secret"
TENANT_ID = "72f988bf-0000-4000-8000-000000000001"
_API = re.compile(r"^/api/data/v(?P<ver>9\.\d)/(?P<rest>.+)$")
THROTTLED = "0x80072322"


def _error(status: int, code: str, message: str, **headers: str) -> _Reply:
    return _Reply(status, {"error": {"code": code, "message": message}}, headers)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral() else float(value)
    return value


class DynamicsEmulator(FaultInjection):
    """The WSGI app; its public methods are the test-control API (see EmulatorControl)."""

    def __init__(self, *, seed: int = 42, accounts: int = 100, contacts_per_account: int = 2,
                 opportunities_per_account: int = 1, products_per_opportunity: int = 2,
                 products: int = 20, same_stamp: int = 7, max_page_size: int = 5000,
                 fault_rate: float = 0.0, fault_kinds: tuple = (429, 503, 500, "truncate"),
                 retry_after: int = 1, slow_rate: float = 0.0, slow_seconds: float = 0.2,
                 token_lifetime: int = 3599, product_numbers: list[str] | None = None,
                 won_every: int = 3):
        self.env = Environment(seed=seed, accounts=accounts,
                               contacts_per_account=contacts_per_account,
                               opportunities_per_account=opportunities_per_account,
                               products_per_opportunity=products_per_opportunity,
                               products=products, same_stamp=same_stamp,
                               product_numbers=product_numbers, won_every=won_every)
        self.max_page_size, self.token_lifetime = max_page_size, token_lifetime
        self.base_url = "http://127.0.0.1"
        self.exhausted = False
        self.tokens: set[str] = set()
        self.token_requests = 0
        self._lock = threading.Lock()
        self.init_faults(random.Random(seed + 1), fault_rate=fault_rate, fault_kinds=fault_kinds,
                         retry_after=retry_after, slow_rate=slow_rate, slow_seconds=slow_seconds)
        self._ids = 0

    # -- control API (tests) --------------------------------------------
    def count(self, stream: str) -> int:
        return len(self.env.all(stream))

    def touch(self, stream: str, n: int) -> list[str]:
        return self.env.touch(stream, n)

    def delete_records(self, stream: str, n: int) -> list[str]:
        return self.env.delete(stream, n)

    def sample_rows(self, stream: str, n: int) -> list[dict[str, Any]]:
        with self._lock:
            start, self._ids = self._ids, self._ids + n
        account = f"/accounts({self.env.all('accounts')[0]['accountid']})"
        rows = []
        for i in range(start + 1, start + n + 1):
            rows.append({
                "accounts": {"accountnumber": f"ERP-{i:06d}", "name": f"New Account {i}",
                             "address1_city": "Dublin", "revenue": 1000},
                "contacts": {"crm2erp_externalid": f"ERP-C-{i:06d}", "lastname": f"Byrne {i}",
                             "firstname": "Aoife", "parentcustomerid_account@odata.bind": account},
                "opportunities": {"crm2erp_externalid": f"ERP-O-{i:06d}",
                                  "name": f"New Deal {i}", "parentaccountid@odata.bind": account,
                                  "estimatedclosedate": "2025-06-30"},
                "products": {"productnumber": f"NEW-{i:05d}", "name": f"New Part {i}",
                             "price": 12.5},
            }[stream])
        return rows

    def invalid_row(self, stream: str) -> dict[str, Any]:
        row = self.sample_rows(stream, 1)[0]
        column = {"contacts": "lastname"}.get(stream, "name")
        row[column] = "X" * 400  # longer than the column allows
        return row

    def exhaust_limit(self) -> None:
        self.exhausted = True

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    # -- WSGI ------------------------------------------------------------
    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        raw_query = environ.get("QUERY_STRING", "")
        raw = read_body(environ)
        headers: dict[str, str] = {"OData-Version": "4.0"}
        truncate = False
        self.count_request()
        try:
            if re.fullmatch(r"/[\w.-]+/oauth2/v2\.0/token", path) and method == "POST":
                status, payload = self._token(raw)
            else:
                match = _API.match(path)
                if match is None:
                    raise _error(404, "0x8006088a", f"Resource not found for the segment "
                                 f"'{path.strip('/')}'.")
                auth = environ.get("HTTP_AUTHORIZATION", "")
                if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
                    raise _Reply(401, None, {"WWW-Authenticate": 'Bearer error="invalid_token", '
                                             'error_description="The access token expired"'})
                truncate = self.take_fault(path, self._refusal)
                if self.exhausted:
                    raise _error(429, THROTTLED, "The environment has used its 24-hour API "
                                 "request entitlement.", **{"Retry-After": "86400"})
                status, payload, extra = self._api(method, match, raw_query, raw, environ)
                headers.update(extra)
        except _Reply as reply:
            status, payload = reply.status, reply.body
            headers.update(reply.headers)
        json_type = None if payload is None else "application/json; odata.metadata=minimal"
        return respond(start_response, status, payload, headers, truncate=truncate,
                       json_type=json_type)

    def _refusal(self, kind: int, retry_after: int | None) -> _Reply:
        if kind == 429:
            return _error(429, THROTTLED, "Number of requests exceeded the limit of 6000 over "
                          "time window of 300 seconds.",
                          **{"Retry-After": self.retry_after_header(retry_after)})
        reply = _error(kind, "0x80040216" if kind == 500 else "0x80040265",
                       "An unexpected error occurred." if kind == 500 else
                       "The service is temporarily unavailable.")
        if retry_after is not None:
            reply.headers["Retry-After"] = str(retry_after)
        return reply

    # -- Entra ID token endpoint ---------------------------------------------
    def _token(self, raw: bytes) -> tuple[int, Any]:
        form = form_fields(raw)
        self.token_requests += 1

        def aad(status: int, error: str, code: int, text: str) -> tuple[int, Any]:
            return status, {"error": error, "error_description": f"AADSTS{code}: {text}",
                            "error_codes": [code], "timestamp": dt.datetime.now(dt.UTC)
                            .strftime("%Y-%m-%d %H:%M:%SZ"), "trace_id": str(uuid.uuid4()),
                            "correlation_id": str(uuid.uuid4())}
        if form.get("grant_type") != "client_credentials":
            return aad(400, "unsupported_grant_type", 70003, "The app requested an unsupported "
                       "grant type.")
        if form.get("client_id") != CLIENT_ID:
            return aad(400, "unauthorized_client", 700016, f"Application with identifier "
                       f"'{form.get('client_id')}' was not found in the directory.")
        if form.get("client_secret") != CLIENT_SECRET:
            return aad(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure "
                       "the secret being sent in the request is the client secret value.")
        if not str(form.get("scope", "")).endswith("/.default"):
            return aad(400, "invalid_scope", 1002012, "The provided value for scope is not "
                       "valid. Client credential flows must have a scope value with /.default")
        token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(32)
        with self._lock:
            self.tokens.add(token)
        return 200, {"token_type": "Bearer", "expires_in": self.token_lifetime,
                     "ext_expires_in": self.token_lifetime, "access_token": token}

    # -- Web API -----------------------------------------------------------------
    def _api(self, method, match, raw_query, raw, environ):
        ver, rest = match["ver"], unquote(match["rest"])
        if rest == "WhoAmI" and method == "GET":
            return 200, {"@odata.context": f"{self.base_url}/api/data/v{ver}/$metadata#"
                         "Microsoft.Dynamics.CRM.WhoAmIResponse",
                         "BusinessUnitId": "4b1d0000-0000-4000-8000-00000000b001",
                         "UserId": "4b1d0000-0000-4000-8000-00000000a001",
                         "OrganizationId": "4b1d0000-0000-4000-8000-00000000c001"}, {}
        m = re.fullmatch(r"(\w+)(?:\((.*)\))?", rest)
        if not m or m[1] not in TABLES:
            raise _error(404, "0x8006088a", f"Resource not found for the segment '{rest}'.")
        entity_set, key_text = m[1], m[2]
        table = TABLES[entity_set]
        query = {k: v[-1] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
        if key_text is None:
            if method != "GET":
                raise _error(405, "0x80060888", f"The HTTP method '{method}' is not allowed "
                             "here; use PATCH with a key to upsert.")
            return self._collection(ver, entity_set, query, environ)
        try:
            key = parse_key(key_text, table.key)
        except ODataError as exc:
            raise _error(400, exc.code, str(exc)) from None
        if set(key) != {table.key} and tuple(sorted(key)) not in \
                {tuple(sorted(k)) for k in table.alternate_keys}:
            raise _error(400, "0x80060891", f"Invalid key: no alternate key with the columns "
                         f"{', '.join(key)} is defined on {table.logical}.")
        entity_url = f"{self.base_url}/api/data/v{ver}/{entity_set}"
        if method == "GET":
            row = self.env.find(entity_set, key)
            if row is None:
                raise _error(404, "0x80040217", f"{table.logical} With Ids = {key_text} "
                             "Does Not Exist")
            return 200, self._render(entity_set, row, None), {}
        if method == "DELETE":
            row = self.env.find(entity_set, key)
            if row is None:
                raise _error(404, "0x80040217", f"{table.logical} With Ids = {key_text} "
                             "Does Not Exist")
            with self.env.lock:
                self.env.delete_row(entity_set, row, self.env.tick())
            return 204, None, {}
        if method != "PATCH":
            raise _error(405, "0x80060888", f"The HTTP method '{method}' is not allowed.")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise _error(400, "0x80040333", "The request body is not valid JSON.") from None
        condition = "create" if environ.get("HTTP_IF_NONE_MATCH") == "*" else \
            "update" if environ.get("HTTP_IF_MATCH") == "*" else None
        try:
            row, _created = self.env.upsert(entity_set, key, body, condition)
        except WriteError as exc:
            raise _error(exc.status, exc.code, str(exc)) from None
        return 204, None, {"OData-EntityId": f"{entity_url}({row[table.key]})"}

    def _render(self, entity_set: str, row: dict[str, Any], select: list[str] | None) -> dict:
        table = TABLES[entity_set]
        columns = select or list(table.columns)
        out: dict[str, Any] = {"@odata.etag": f'W/"{row.get("versionnumber") or 0}"'}
        out.update({c: _json_value(row.get(c)) for c in columns})
        out.setdefault(table.key, row[table.key])
        return out

    def _collection(self, ver, entity_set, query, environ) -> tuple[int, Any, dict[str, str]]:
        table = TABLES[entity_set]
        where = f"Microsoft.Dynamics.CRM.{table.logical}"
        select = [c.strip() for c in query.get("$select", "").split(",") if c.strip()] or None
        for column in select or []:
            if column not in table.columns:
                raise _error(400, "0x0", f"Could not find a property named '{column}' "
                             f"on type '{where}'.")
        rows = self.env.all(entity_set)
        if query.get("$filter"):
            try:
                predicate = parse_filter(query["$filter"], set(table.columns))
            except ODataError as exc:
                raise _error(400, exc.code, str(exc).replace("Microsoft.Dynamics.CRM.entity",
                                                             where)) from None
            rows = [r for r in rows if predicate(r)]
        for part in reversed([p.strip() for p in query.get("$orderby", "").split(",")
                              if p.strip()]):
            column, _, direction = part.partition(" ")
            if column not in table.columns:
                raise _error(400, "0x0", f"Could not find a property named '{column}' "
                             f"on type '{where}'.")
            kind = table.columns[column]
            rows.sort(key=lambda r, c=column, k=kind: (
                r.get(c) is not None,
                guid_sort_key(r.get(c)) if k in ("guid", "lookup") and r.get(c) else
                (r.get(c) if r.get(c) is not None else "")),
                reverse=direction.strip().lower() == "desc")
        if query.get("$top"):
            rows = rows[: int(query["$top"])]
        prefer = re.search(r"odata\.maxpagesize=(\d+)", environ.get("HTTP_PREFER", ""))
        size = min(int(prefer[1]), self.max_page_size) if prefer else self.max_page_size
        page_no = 1
        if cookie := query.get("$skiptoken"):
            found = re.search(r'pagenumber="(\d+)"', cookie)
            if not found:
                raise _error(400, "0x80060891", "Invalid $skiptoken paging cookie.")
            page_no = int(found[1])
        start = (page_no - 1) * size
        page = rows[start:start + size]
        context = f"{self.base_url}/api/data/v{ver}/$metadata#{entity_set}" + \
            (f"({','.join(select)})" if select else "")
        expand = self._expand(entity_set, query.get("$expand", ""))
        values = []
        for row in page:
            rendered = self._render(entity_set, row, select)
            for nav, (column, target_set, columns) in expand.items():
                related = self.env.get(target_set, row.get(column) or "")
                rendered[nav] = self._render(target_set, related, columns) if related else None
            values.append(rendered)
        body: dict[str, Any] = {"@odata.context": context, "value": values}
        if start + size < len(rows):
            last = page[-1][table.key]
            inner = f'<cookie page="{page_no}"><{table.key} last="{{{last}}}" /></cookie>'
            cookie = (f'<cookie pagenumber="{page_no + 1}" pagingcookie="'
                      f'{quote(quote(inner))}" istracking="False" />')
            params = [(k, v) for k, v in query.items() if k != "$skiptoken"]
            params.append(("$skiptoken", cookie))
            body["@odata.nextLink"] = (f"{self.base_url}/api/data/v{ver}/{entity_set}?" +
                                       "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}"
                                                for k, v in params))
        extra = {"Preference-Applied": f"odata.maxpagesize={size}"} if prefer else {}
        return 200, body, extra


    @staticmethod
    def _expand(entity_set: str, text: str) -> dict[str, tuple[str, str, list[str] | None]]:
        """``nav($select=a,b),other`` -> ``{nav: (lookup column, target set, [a, b])}``."""
        table, out = TABLES[entity_set], {}
        for part in re.findall(r"\w+(?:\([^)]*\))?", text):
            m = re.fullmatch(r"(\w+)(?:\(\$select=([\w,]+)\))?", part)
            if not m or m[1] not in table.binds:
                raise _error(400, "0x80060888", f"Could not find a navigation property named "
                             f"'{part.split('(')[0]}' on type 'Microsoft.Dynamics.CRM."
                             f"{table.logical}'.")
            column, target_set = table.binds[m[1]]
            columns = m[2].split(",") if m[2] else None
            unknown = [c for c in columns or [] if c not in TABLES[target_set].columns]
            if unknown:
                raise _error(400, "0x80060888", f"Could not find a property named "
                             f"'{unknown[0]}' on type 'Microsoft.Dynamics.CRM."
                             f"{TABLES[target_set].logical}'.")
            out[m[1]] = (column, target_set, columns)
        return out


def make_app(seed: int = 42, accounts: int = 100, fault_rate: float = 0.0,
             **options: Any) -> DynamicsEmulator:
    """Build an emulator app (a WSGI callable with the test-control methods)."""
    return DynamicsEmulator(seed=seed, accounts=accounts, fault_rate=fault_rate, **options)


def main(argv: list[str] | None = None) -> int:
    """Run the emulator on a port until interrupted."""
    return run_emulator(argv, "crm2erp.emulators.dynamics.app",
                        "Run the Dataverse Web API emulator.", 8703, make_app,
                        f"Dataverse emulator on {{url}} (tenant {TENANT_ID}, "
                        f"client_id={CLIENT_ID}, client_secret={CLIENT_SECRET})",
                        {"accounts": (count, 100)})


if __name__ == "__main__":
    raise SystemExit(main())

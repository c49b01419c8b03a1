"""A Pipedrive-like demo CRM API (WSGI): a CRM that has no built-in connector.

It exists to show (and test) the declarative REST connector: nothing in
crm2erp knows this API, the connection YAML in ``docs/connectors/rest.md``
describes it. Served with :func:`crm2erp.testing.server.serve_wsgi` or::

    python -m crm2erp.connectors.rest.emulator --port 8702

Endpoints, shaped like Pipedrive's v1 API:

* ``POST /oauth/token`` - OAuth2 client credentials (``expires_in`` 3600);
* ``GET /v1/organizations?start=&limit=&since=`` - ``{"success", "data": [...],
  "additional_data": {"pagination": {"start", "limit", "more_items_in_collection",
  "next_start"}}}``, ordered by id (not by change time); ``since``
  (``YYYY-MM-DD HH:MM:SS``, UTC) keeps records with ``update_time >= since``;
  deleted organizations stay listed with ``active_flag: false``;
* ``GET /v1/organizations/find?ref=`` - organizations by their external ref;
* ``POST /v1/organizations`` (201) and ``PUT /v1/organizations/{id}`` (200);
  a missing name is a 400 ``{"success": false, "error": "..."}``;
* faults: 429 with ``Retry-After``, 500, 503, cut bodies (queued with
  :meth:`fail_next`), an expired token (401) and a used-up daily budget
  (429 ``Daily API token budget exceeded``).
"""

from __future__ import annotations

__all__ = ["DemoCrmApi", "make_app", "main", "CLIENT_ID", "CLIENT_SECRET"]

import datetime as dt
import json
import logging
import random
import re
import secrets
import threading
from typing import Any

from crm2erp.testing.emulation import FaultInjection, form_fields, query_fields, read_body, respond
from crm2erp.testing.emulation import Reply as _Reply
from crm2erp.testing.server import emulator_parser, serve_until_interrupted

log = logging.getLogger(__name__)
CLIENT_ID, CLIENT_SECRET = "demo-crm-client", "demo-crm-secret"
_FMT = "%Y-%m-%d %H:%M:%S"
_NAMES = ["Nordlicht", "Brightwater", "Rheinkraft", "Solvia", "Tannenberg", "Quantix",
          "Mistral", "Havel", "Ostsee", "Argon", "Lindgren", "Pacific Rim"]
_KINDS = ["Logistics", "Software", "Textiles", "Engineering", "Foods", "Energy"]
_CITIES = [("Berlin", "10115", "Germany"), ("Hamburg", "20095", "Germany"),
           ("Wien", "1010", "Austria"), ("Lyon", "69002", "France"),
           ("Rotterdam", "3011", "Netherlands"), ("Leeds", "LS1 1UR", "United Kingdom")]
BASE = dt.datetime(2025, 3, 3, 9, 0, 0)


def _fail(status: int, message: str) -> _Reply:
    return _Reply(status, {"success": False, "error": message, "errorCode": status})


class DemoCrmApi(FaultInjection):
    """The WSGI app; its public methods are the test-control API (``EmulatorControl``)."""

    def __init__(self, *, seed: int = 42, organizations: int = 130, same_stamp: int = 6,
                 max_limit: int = 500):
        self.rng = random.Random(seed)
        self.max_limit = max_limit
        self.base_url = "http://127.0.0.1"
        self.orgs: dict[int, dict[str, Any]] = {}
        self.budget_used_up = False
        self.requests_served = 0
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self.init_faults(self.rng)  # only the faults a test queues
        self._new = 0
        for n in range(organizations):
            stamp = (BASE + dt.timedelta(minutes=n // max(1, same_stamp))).strftime(_FMT)
            city, postcode, country = _CITIES[n % len(_CITIES)]
            name = f"{_NAMES[n % len(_NAMES)]} {_KINDS[(n // len(_NAMES)) % len(_KINDS)]}"
            self._insert({"name": f"{name} {n + 1}", "address_locality": city,
                          "address_postal_code": postcode, "address_country": country,
                          "address_route": f"Marktstraße {n % 40 + 1}",
                          "email": f"office@org{n + 1}.example" if n % 9 else None,
                          "label": ["customer", "prospect", "partner"][n % 3],
                          "owner_name": "Demo Owner", "ref": None}, stamp)

    def _insert(self, values: dict[str, Any], stamp: str) -> dict[str, Any]:
        org_id = len(self.orgs) + 1
        record = {"id": org_id, **values, "active_flag": True, "add_time": stamp,
                  "update_time": stamp}
        self.orgs[org_id] = record
        return record

    @staticmethod
    def _now() -> str:
        return dt.datetime.now(dt.UTC).strftime(_FMT)

    # -- control API -------------------------------------------------------
    def count(self, stream: str) -> int:
        return sum(1 for o in self.orgs.values() if o["active_flag"])

    def update(self, org_id: int, **values: Any) -> None:
        """Change an organization as a CRM user would (``update_time`` moves)."""
        self.orgs[org_id].update(values, update_time=self._now())

    def touch(self, stream: str, n: int) -> list[str]:
        now = self._now()
        live = [o for o in self.orgs.values() if o["active_flag"]][:n]
        for org in live:
            org["owner_name"], org["update_time"] = "Touched Owner", now
        return [str(o["id"]) for o in live]

    def delete_records(self, stream: str, n: int) -> list[str]:
        now = self._now()
        live = [o for o in self.orgs.values() if o["active_flag"]][-n:]
        for org in live:
            org["active_flag"], org["update_time"] = False, now
        return [str(o["id"]) for o in live]

    def sample_rows(self, stream: str, n: int) -> list[dict[str, Any]]:
        with self._lock:
            start, self._new = self._new, self._new + n
        return [{"ref": f"ERP-{k:06d}", "name": f"Imported Org {k}",
                 "address_locality": "Berlin", "address_country": "Germany"}
                for k in range(start + 1, start + n + 1)]

    def invalid_row(self, stream: str) -> dict[str, Any]:
        row = self.sample_rows(stream, 1)[0]
        row.pop("name")
        return row

    def exhaust_limit(self) -> None:
        self.budget_used_up = True

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    # -- WSGI ----------------------------------------------------------------
    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        query, raw = query_fields(environ), read_body(environ)
        headers = {"Content-Type": "application/json"}
        truncate = False
        with self._lock:
            self.requests_served += 1
        try:
            if path == "/oauth/token" and method == "POST":
                status, payload = 200, self._token(raw)
            else:
                kind, retry_after = self.next_fault(path)
                if kind == "truncate":
                    truncate = True
                elif kind is not None:
                    extra = {"Retry-After": str(retry_after or 1)} if kind in (429, 503) else {}
                    raise _Reply(int(kind), {"success": False, "error": "try again"}, extra)
                self._authorize(environ)
                status, payload = self._api(method, path, query, raw)
        except _Reply as reply:
            status, payload = reply.status, reply.body
            headers.update(reply.headers)
        return respond(start_response, status, payload, headers, truncate=truncate)

    def _token(self, raw: bytes) -> dict[str, Any]:
        form = form_fields(raw)
        if form.get("grant_type") != "client_credentials" or \
                (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            raise _Reply(401, {"error": "invalid_client",
                               "error_description": "Invalid client credentials"})
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        return {"access_token": token, "token_type": "Bearer", "expires_in": 3600}

    def _authorize(self, environ) -> None:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self._tokens:
            raise _fail(401, "Unauthorized: the access token is invalid or expired")
        if self.budget_used_up:
            raise _Reply(429, {"success": False, "error": "Daily API token budget exceeded",
                               "errorCode": 429}, {"x-daily-requests-left": "0"})

    def _api(self, method: str, path: str, query: dict[str, str], raw: bytes):
        if path == "/v1/organizations" and method == "GET":
            return 200, self._list(query)
        if path == "/v1/organizations/find" and method == "GET":
            ref = query.get("ref")
            return 200, {"success": True, "data": [o for o in self.orgs.values()
                                                   if ref and o.get("ref") == ref]}
        if path == "/v1/organizations" and method == "POST":
            values = self._values(raw, creating=True)
            with self._lock:
                record = self._insert(values, self._now())
            return 201, {"success": True, "data": record}
        if (m := re.fullmatch(r"/v1/organizations/(\d+)", path)) and method == "PUT":
            org = self.orgs.get(int(m[1]))
            if org is None:
                raise _fail(404, f"Organization {m[1]} not found")
            org.update(self._values(raw, creating=False))
            org["update_time"] = self._now()
            return 200, {"success": True, "data": org}
        raise _fail(404 if method in ("GET", "POST", "PUT") else 405, "Unknown endpoint")

    def _list(self, query: dict[str, str]) -> dict[str, Any]:
        try:
            start = int(query.get("start", 0))
            limit = min(int(query.get("limit", 100)), self.max_limit)
        except ValueError:
            raise _fail(400, "start and limit must be integers") from None
        since = query.get("since")
        if since is not None and not re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", since):
            raise _fail(400, "since must be YYYY-MM-DD HH:MM:SS (UTC)")
        items = [o for o in self.orgs.values() if since is None or o["update_time"] >= since]
        if since is None:
            items = [o for o in items if o["active_flag"]]
        page = items[start:start + limit]
        more = start + limit < len(items)
        return {"success": True, "data": [dict(o) for o in page], "additional_data": {
            "pagination": {"start": start, "limit": limit, "more_items_in_collection": more,
                           **({"next_start": start + limit} if more else {})}}}

    @staticmethod
    def _values(raw: bytes, *, creating: bool) -> dict[str, Any]:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise _fail(400, "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _fail(400, "The request body must be an object")
        allowed = {"name", "ref", "email", "label", "owner_name", "address_route",
                   "address_locality", "address_postal_code", "address_country"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise _fail(400, f"Unknown field(s): {', '.join(unknown)}")
        if creating and not str(body.get("name") or "").strip():
            raise _fail(400, "Name must be given")
        return body


def make_app(seed: int = 42, organizations: int = 130, **options: Any) -> DemoCrmApi:
    return DemoCrmApi(seed=seed, organizations=organizations, **options)


def main(argv: list[str] | None = None) -> int:
    """Run the emulator on a port until interrupted."""
    parser = emulator_parser("python -m crm2erp.connectors.rest.emulator",
                             "Run the Pipedrive-like demo CRM API.", 8702,
                             seed=False, fault_rate=False)
    parser.add_argument("--organizations", type=int, default=130)
    args = parser.parse_args(argv)
    app = make_app(organizations=args.organizations)
    return serve_until_interrupted(app, args.host, args.port, "demo CRM API on {url} "
                                   f"(client_id={CLIENT_ID}, client_secret={CLIENT_SECRET})")


if __name__ == "__main__":
    raise SystemExit(main())

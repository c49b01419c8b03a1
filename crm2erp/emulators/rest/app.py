"""A Pipedrive-like demo CRM API (WSGI): a CRM that has no built-in connector.

It exists to show (and test) the declarative REST connector: nothing in
crm2erp knows this API, the connection YAML in ``docs/connectors/rest.md``
describes it. Served with :func:`crm2erp.emulators.kernel.server.serve_wsgi` or::

    python -m crm2erp.emulators.rest.app --port 8702

Endpoints, shaped like Pipedrive's v1 API:

* ``POST /oauth/token`` - OAuth2 client credentials (``expires_in`` 3600);
* ``GET /v1/organizations?start=&limit=&since=&sort=`` - ``{"success", "data": [...],
  "additional_data": {"pagination": {"start", "limit", "more_items_in_collection",
  "next_start"}}}``, ordered by ``sort`` (``"update_time DESC"``; default id); ``since``
  (``YYYY-MM-DD HH:MM:SS``, UTC) keeps records with ``update_time >= since``;
  deleted organizations stay listed with ``active_flag: false``;
* ``GET /v1/organizations/find?ref=`` - organizations by their external ref;
* ``POST /v1/organizations`` (201) and ``PUT /v1/organizations/{id}`` (200);
  a missing name is a 400 ``{"success": false, "error": "..."}``;
* ``GET /v1/organizations/{id}`` and ``DELETE /v1/organizations/{id}`` (200
  ``{"success": true, "data": {"id"}}``; the organization stays readable with
  ``active_flag: false``, as Pipedrive keeps deleted ones for 30 days); an id
  that does not exist or is deleted already is a 404;
* ``GET /api/v2/organizations?cursor=&limit=&updated_since=&sort_by=&sort_direction=``
  - Pipedrive's API v2 shape: ``{"success", "data": [...], "additional_data":
  {"next_cursor"}}`` (a keyset cursor), RFC 3339 times, the address as an
  object and custom fields in ``custom_fields`` (the text field
  :data:`ERP_FIELD` holds an ERP customer number); ``GET`` and ``PATCH
  /api/v2/organizations/{id}`` (unknown fields are a 400, as v2 validates
  strictly);
* the same organizations in other APIs' list envelopes, one per paging style
  of the declarative connector: ``GET /api/v1/Account?offset=&maxSize=`` as
  EspoCRM lists (``{"total", "list"}``), ``GET /drf/organizations/?page=&page_size=``
  as Django REST framework's page-number pagination (``{"count", "next",
  "previous", "results"}``) and ``GET /gh/organizations?page=&per_page=`` as
  GitHub's REST API (a bare list and an RFC 8288 ``Link`` header). They list
  in id order; :attr:`on_list` runs after every page is cut (a test adds
  records there, "during the run");
* faults: 429 with ``Retry-After``, 500, 503, cut bodies (queued with
  :meth:`fail_next`), an expired token (401) and a used-up daily budget
  (429 ``Daily API token budget exceeded``).
"""

from __future__ import annotations

__all__ = ["DemoCrmApi", "make_app", "main", "CLIENT_ID", "CLIENT_SECRET", "ERP_FIELD"]

import base64
import datetime as dt
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from crm2erp.emulators.kernel.emulation import (
    FaultInjection,
    form_fields,
    query_fields,
    read_body,
    respond,
)
from crm2erp.emulators.kernel.emulation import Reply as _Reply
from crm2erp.emulators.kernel.server import count, run_emulator
from crm2erp.emulators.kernel.store import RecordStore

log = logging.getLogger(__name__)
CLIENT_ID, CLIENT_SECRET = "demo-crm-client", "demo-crm-secret"
# the key of the "ERP customer number" text custom field (Pipedrive keys are 40 hex digits)
ERP_FIELD = "5d7a0c3e8f1b2a4c6e9d0f1a3b5c7d9e2f4a6b8c"
_FMT = "%Y-%m-%d %H:%M:%S"
_NAMES = ["Nordlicht", "Brightwater", "Rheinkraft", "Solvia", "Tannenberg", "Quantix",
          "Mistral", "Havel", "Ostsee", "Argon", "Lindgren", "Pacific Rim"]
_KINDS = ["Logistics", "Software", "Textiles", "Engineering", "Foods", "Energy"]
_CITIES = [("Berlin", "10115", "Germany"), ("Hamburg", "20095", "Germany"),
           ("Wien", "1010", "Austria"), ("Lyon", "69002", "France"),
           ("Rotterdam", "3011", "Netherlands"), ("Leeds", "LS1 1UR", "United Kingdom")]
BASE = dt.datetime(2025, 3, 3, 9, 0, 0)   # the first stamp; same_stamp records share a minute
_ORGS = "organizations"


def _refusal(status: int, retry_after: int | None) -> _Reply:
    extra = {"Retry-After": str(retry_after or 1)} if status in (429, 503) else {}
    return _Reply(status, {"success": False, "error": "try again"}, extra)


def _fail(status: int, message: str) -> _Reply:
    return _Reply(status, {"success": False, "error": message, "errorCode": status})


class DemoCrmApi(FaultInjection):
    """The WSGI app; its public methods are the test-control API (``EmulatorControl``)."""

    def __init__(self, *, seed: int = 42, organizations: int = 130, same_stamp: int = 6,
                 max_limit: int = 500):
        self.store = RecordStore([_ORGS], seed=seed, start=BASE, same_stamp=same_stamp,
                                 seed_step=dt.timedelta(minutes=1))
        self.max_limit = max_limit
        self.base_url = "http://127.0.0.1"
        self.budget_used_up = False
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self.init_faults(self.store.rng)  # only the faults a test queues
        self.on_list: Callable[[], None] | None = None
        self._new = 0
        for n in range(organizations):
            stamp = self.store.seed_stamp(_ORGS).strftime(_FMT)
            city, postcode, country = _CITIES[n % len(_CITIES)]
            name = f"{_NAMES[n % len(_NAMES)]} {_KINDS[(n // len(_NAMES)) % len(_KINDS)]}"
            self._insert({"name": f"{name} {n + 1}", "address_locality": city,
                          "address_postal_code": postcode, "address_country": country,
                          "address_route": f"Marktstraße {n % 40 + 1}",
                          "email": f"office@org{n + 1}.example" if n % 9 else None,
                          "label": ["customer", "prospect", "partner"][n % 3],
                          "owner_name": "Demo Owner", "ref": None}, stamp)
        self.store.end_seed()

    @property
    def orgs(self) -> dict[int, dict[str, Any]]:
        """The organizations by id (the store's one table)."""
        return self.store.tables[_ORGS]

    def _insert(self, values: dict[str, Any], stamp: str) -> dict[str, Any]:
        org_id = self.store.next_number(_ORGS)
        record = {"id": org_id, **values, ERP_FIELD: None, "active_flag": True,
                  "add_time": stamp, "update_time": stamp}
        return self.store.put(_ORGS, org_id, record)

    def _now(self) -> str:
        """A change happened: the store's clock moves on; its time as the API writes it."""
        return self.store.tick().strftime(_FMT)

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

    def add(self, name: str, **values: Any) -> int:
        """A new organization, as a CRM user creates one; its id."""
        with self._lock:
            return self._insert({"name": name, "ref": None, **values}, self._now())["id"]

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
        self.count_request()
        try:
            if path == "/oauth/token" and method == "POST":
                status, payload = 200, self._token(raw)
            else:
                truncate = self.take_fault(path, _refusal)
                self._authorize(environ)
                status, payload, *extra = self._api(method, path, query, raw)
                headers.update(*extra)
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
        if (m := re.fullmatch(r"/v1/organizations/(\d+)", path)) and method == "GET":
            org = self.orgs.get(int(m[1]))
            if org is None:
                raise _fail(404, f"Organization {m[1]} not found")
            return 200, {"success": True, "data": org}
        if (m := re.fullmatch(r"/v1/organizations/(\d+)", path)) and method == "DELETE":
            with self._lock:
                org = self.orgs.get(int(m[1]))
                if org is None or not org["active_flag"]:
                    raise _fail(404, f"Organization {m[1]} not found")
                org["active_flag"], org["update_time"] = False, self._now()
            return 200, {"success": True, "data": {"id": org["id"]}}
        if (m := re.fullmatch(r"/v1/organizations/(\d+)", path)) and method == "PUT":
            org = self.orgs.get(int(m[1]))
            if org is None:
                raise _fail(404, f"Organization {m[1]} not found")
            org.update(self._values(raw, creating=False))
            org["update_time"] = self._now()
            return 200, {"success": True, "data": org}
        if path.startswith("/api/v2/organizations"):
            return self._v2(method, path, query, raw)
        if path in ("/api/v1/Account", "/drf/organizations/", "/gh/organizations") \
                and method == "GET":
            return self._other_envelope(path, query)
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
        order = re.fullmatch(r"\s*(\w+)(?:\s+(ASC|DESC))?\s*", query.get("sort") or "id",
                             re.I)
        if order is None or order[1] not in ("id", "name", "update_time", "add_time"):
            raise _fail(400, "sort must be 'field ASC' or 'field DESC'")
        items.sort(key=lambda o: (o[order[1]], o["id"]),
                   reverse=(order[2] or "ASC").upper() == "DESC")
        if since is None:
            items = [o for o in items if o["active_flag"]]
        page = self._page(items, start, limit)
        more = start + limit < len(items)
        return {"success": True, "data": page, "additional_data": {
            "pagination": {"start": start, "limit": limit, "more_items_in_collection": more,
                           **({"next_start": start + limit} if more else {})}}}

    def _page(self, items: list[dict[str, Any]], start: int, size: int) -> list[dict]:
        page = [dict(o) for o in items[start:start + size]]
        if self.on_list is not None:
            self.on_list()
        return page

    # -- Pipedrive API v2 -------------------------------------------------
    @staticmethod
    def _rfc3339(stamp: str) -> str:
        return dt.datetime.strptime(stamp, _FMT).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _v2_record(self, org: dict[str, Any]) -> dict[str, Any]:
        parts = [org.get(k) for k in ("address_route", "address_postal_code",
                                      "address_locality", "address_country")]
        return {"id": org["id"], "name": org["name"], "owner_id": 1,
                "add_time": self._rfc3339(org["add_time"]),
                "update_time": self._rfc3339(org["update_time"]),
                "is_deleted": not org["active_flag"], "label_ids": [],
                "address": {"value": ", ".join(p for p in parts if p) or None,
                            "route": org.get("address_route"),
                            "locality": org.get("address_locality"),
                            "postal_code": org.get("address_postal_code"),
                            "country": org.get("address_country")},
                "custom_fields": {ERP_FIELD: org.get(ERP_FIELD)}}

    def _v2(self, method: str, path: str, query: dict[str, str], raw: bytes):
        if path == "/api/v2/organizations" and method == "GET":
            return 200, self._v2_list(query)
        m = re.fullmatch(r"/api/v2/organizations/(\d+)", path)
        org = self.orgs.get(int(m[1])) if m else None
        if org is None or method not in ("GET", "PATCH"):
            raise _fail(404, "Organization not found")
        if method == "PATCH":
            self._v2_patch(org, raw)
        return 200, {"success": True, "data": self._v2_record(org)}

    def _v2_list(self, query: dict[str, str]) -> dict[str, Any]:
        sort_by = query.get("sort_by", "id")
        if sort_by not in ("id", "update_time", "add_time"):
            raise _fail(400, "sort_by must be one of id, update_time, add_time")
        descending = query.get("sort_direction", "asc") == "desc"
        since = query.get("updated_since")
        items = sorted((o for o in self.orgs.values() if o["active_flag"] or since),
                       key=lambda o: (o[sort_by], o["id"]), reverse=descending)
        if since:
            since = since.replace("T", " ").rstrip("Z")[:19]
            items = [o for o in items if o["update_time"] >= since]
        if query.get("cursor"):   # a keyset cursor: the (sort value, id) of the last record
            last = json.loads(base64.urlsafe_b64decode(query["cursor"]))
            items = [o for o in items if ((o[sort_by], o["id"]) < tuple(last) if descending
                                          else (o[sort_by], o["id"]) > tuple(last))]
        limit = min(int(query.get("limit", 100)), self.max_limit)
        page = self._page(items, 0, limit)
        cursor = base64.urlsafe_b64encode(json.dumps(
            [page[-1][sort_by], page[-1]["id"]]).encode()).decode() \
            if len(items) > limit else None
        return {"success": True, "data": [self._v2_record(o) for o in page],
                "additional_data": {"next_cursor": cursor}}

    def _v2_patch(self, org: dict[str, Any], raw: bytes) -> None:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise _fail(400, "The request body is not valid JSON") from None
        unknown = sorted(set(body) - {"name", "owner_id", "label_ids", "custom_fields"}) \
            if isinstance(body, dict) else ["(not an object)"]
        custom = body.get("custom_fields", {}) if not unknown else {}
        if not isinstance(custom, dict):
            unknown = ["custom_fields"]
        else:
            unknown += sorted(f"custom_fields.{k}" for k in set(custom) - {ERP_FIELD})
        if unknown or not isinstance(custom.get(ERP_FIELD, ""), str | None):
            raise _fail(400, f"Validation failed: {', '.join(unknown) or ERP_FIELD}: "
                             "unknown field or wrong type")
        if "name" in body:
            org["name"] = body["name"]
        if ERP_FIELD in custom:
            org[ERP_FIELD] = custom[ERP_FIELD]
        org["update_time"] = self._now()

    # -- the same records in other APIs' list envelopes --------------------
    def _other_envelope(self, path: str, query: dict[str, str]):
        items = [o for o in self.orgs.values() if o["active_flag"]]
        try:
            if path == "/api/v1/Account":           # EspoCRM: offset, maxSize
                start, size = int(query.get("offset", 0)), int(query.get("maxSize", 20))
                return 200, {"total": len(items),
                             "list": self._page(items, start, min(size, 200))}
            number = int(query.get("page", 1))
            size = min(int(query.get("page_size" if path.startswith("/drf") else
                                     "per_page", 30)), 100)
        except ValueError:
            raise _fail(400, "paging parameters must be integers") from None
        page = self._page(items, (number - 1) * size, size)
        more = number * size < len(items)

        def link(n: int) -> str:
            name = "page_size" if path.startswith("/drf") else "per_page"
            return f"{self.base_url}{path}?{urlencode({'page': n, name: size})}"
        if path.startswith("/drf"):                 # Django REST framework
            return 200, {"count": len(items), "next": link(number + 1) if more else None,
                         "previous": link(number - 1) if number > 1 else None,
                         "results": page}
        last = max(1, -(-len(items) // size))       # GitHub: RFC 8288 Link header
        rels = ([f'<{link(number + 1)}>; rel="next"'] if more else []) + \
            [f'<{link(last)}>; rel="last"']
        return 200, page, {"Link": ", ".join(rels)}

    @staticmethod
    def _values(raw: bytes, *, creating: bool) -> dict[str, Any]:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise _fail(400, "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _fail(400, "The request body must be an object")
        allowed = {"name", "ref", "email", "label", "owner_name", "address_route",
                   "address_locality", "address_postal_code", "address_country", ERP_FIELD}
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
    return run_emulator(argv, "crm2erp.emulators.rest.app",
                        "Run the Pipedrive-like demo CRM API.", 8702, make_app,
                        f"demo CRM API on {{url}} (client_id={CLIENT_ID}, "
                        f"client_secret={CLIENT_SECRET})",
                        {"organizations": (count, 130)}, seed=False, fault_rate=False)


if __name__ == "__main__":
    raise SystemExit(main())

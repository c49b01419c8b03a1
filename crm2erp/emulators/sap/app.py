"""A protocol-faithful SAP S/4HANA OData v2 emulator (WSGI), for tests, benchmarks and demos.

Run it with :func:`crm2erp.emulators.kernel.server.serve_wsgi` or from the command line::

    python -m crm2erp.emulators.sap.app --port 8702 --business-partners 500

What it enforces, as SAP Gateway does:

* basic authentication (``EMU_USER`` / ``EMU_PASSWORD``), session cookies;
* CSRF: modifying calls (``$batch`` included) need the ``x-csrf-token`` fetched
  in the same session with ``x-csrf-token: Fetch``; otherwise ``403`` with
  ``x-csrf-token: Required``. Tokens expire (``csrf_lifetime``) and can be
  invalidated by the test (:meth:`SapEmulator.invalidate_csrf`, ``..._after``);
* etags: ``MERGE``/``PATCH``/``PUT``/``DELETE`` need ``If-Match`` (``428``
  without, ``412`` when stale); every change gives the entity a new etag;
* ``$batch`` with changesets applied atomically (a failing changeset is rolled
  back and answered by one error response), deep insert, no deep update;
* reads with ``$filter``, ``$orderby``, ``$expand``, ``$select``, ``$top``,
  ``$skip``, ``$inlinecount`` and server paging with ``__next``/``$skiptoken``;
* SAP error bodies; injectable faults (429 with ``Retry-After``, 500, 503, cut
  bodies) and an API-gateway quota (``429 QuotaViolation``).
"""

from __future__ import annotations

__all__ = ["SapEmulator", "make_app", "main", "USERNAME", "PASSWORD", "STREAM_SETS"]

import base64
import datetime as dt
import json
import logging
import re
import secrets
import threading
import time
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

from crm2erp.connectors.toolkit import odata_batch as batch
from crm2erp.emulators.kernel.emulation import FaultInjection, query_fields, read_body, respond
from crm2erp.emulators.kernel.emulation import Reply as _Reply
from crm2erp.emulators.kernel.odata import V2, FilterError, parse_filter
from crm2erp.emulators.kernel.server import count, run_emulator
from crm2erp.emulators.sap.model import SERVICES, TYPES, EmulatorError, EntityType, Store
from crm2erp.emulators.sap.model import encode_value as _encode

log = logging.getLogger(__name__)
USERNAME, PASSWORD = "EMU_USER", "EMU_PASSWORD"
COOKIE = "SAP_SESSIONID_EMU_100"
STREAM_SETS = {"business_partners": "A_BusinessPartner", "sales_orders": "A_SalesOrder",
               "billing_documents": "A_BillingDocument",
               "planned_independent_requirements": "PlannedIndepRqmt"}
_PATH = re.compile(r"^/sap/opu/odata/sap/(?P<service>[A-Z0-9_]+)(?P<rest>/.*)?$")
_RESOURCE = re.compile(r"^/(?P<set>\w+)(?:\((?P<key>[^)]*)\))?(?:/(?P<nav>\w+))?/?$")
_WRITES = {"POST", "PUT", "MERGE", "PATCH", "DELETE"}
_UNDELETABLE = {"A_BusinessPartner", "A_Customer"}   # sap:deletable="false" in $metadata


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict:
    """The body SAP Gateway sends with a 4xx/5xx."""
    return {"error": {"code": code, "message": {"lang": "en", "value": message},
                      "innererror": {"errordetails": details or []}}}


def _error(exc: EmulatorError) -> _Reply:
    details = [{"code": exc.code, "message": exc.message, "propertyref": exc.target,
                "severity": "error", "target": exc.target}]
    return _Reply(exc.status, error_body(exc.code, exc.message, details))


class SapEmulator(FaultInjection):
    """The WSGI app; its public methods are the test-control API (EmulatorControl)."""

    def __init__(self, *, seed: int = 42, business_partners: int = 120, sales_orders: int = 40,
                 billing_documents: int = 30, requirements: int = 10, page_size: int = 100,
                 group: int = 7, csrf_lifetime: float = 1800.0, fault_rate: float = 0.0,
                 retry_after: int = 1):
        self.base_url = "http://127.0.0.1"
        self.page_size, self.csrf_lifetime = page_size, csrf_lifetime
        self.store = Store(seed, dt.datetime(2024, 1, 2, 8, 0, tzinfo=dt.UTC))
        self.quota_exhausted = False
        self.writes_accepted = 0
        self.csrf_refusals = 0
        self.etag_refusals = 0
        self._lock = threading.RLock()
        self.init_faults(self.store.rng, fault_rate=fault_rate, fault_kinds=(429, 503, 500),
                         retry_after=retry_after)
        self._sessions: dict[str, dict[str, Any]] = {}
        self._invalidate_after: int | None = None
        self._bump: set[tuple[str, tuple]] = set()
        self._new_rows = 0
        self._seed(business_partners, sales_orders, billing_documents, requirements, group)

    # -- seed data -------------------------------------------------------------
    def _seed(self, partners: int, orders: int, bills: int, requirements: int, group: int):
        st, rng = self.store, self.store.rng
        cities = [("Berlin", "10115", "DE"), ("Hamburg", "20095", "DE"), ("Wien", "1010", "AT"),
                  ("Zürich", "8001", "CH"), ("Lyon", "69001", "FR"), ("Milano", "20121", "IT")]
        words = ["Nord", "Alpen", "Rhein", "Delta", "Kraft", "Blau", "Stahl", "Solar", "Hansa"]
        start = st.clock
        for i in range(partners):
            st.clock = start + dt.timedelta(minutes=i // group)
            city, postal, country = cities[i % len(cities)]
            st.create("A_BusinessPartner", {
                "BusinessPartnerCategory": "2", "BusinessPartnerGrouping": "BP02",
                "OrganizationBPName1": f"{rng.choice(words)} {rng.choice(words)} GmbH {i + 1}",
                "SearchTerm1": f"SEED{i + 1:05d}", "Language": "DE",
                "BusinessPartnerIDByExtSystem": f"SEED{i + 1:06d}",
                "IsMarkedForArchiving": False, "BusinessPartnerIsBlocked": False,
                "to_BusinessPartnerAddress": [{"CityName": city, "PostalCode": postal,
                                               "StreetName": f"Hauptstraße {i + 1}",
                                               "Country": country}],
                "to_BusinessPartnerRole": [{"BusinessPartnerRole": "FLCU00"},
                                           {"BusinessPartnerRole": "FLCU01"}]})
        partner_keys = list(st.tables["A_BusinessPartner"])
        st.clock = start + dt.timedelta(days=10)
        for i, key in enumerate(partner_keys):
            if i % 6 == 0:
                continue  # never changed: LastChangeDate stays empty, as in S/4
            st.clock = start + dt.timedelta(days=10, minutes=i // group)
            st.stamp(TYPES["A_BusinessPartner"], st.tables["A_BusinessPartner"][key], False)
        for i in range(orders):
            st.clock = start + dt.timedelta(days=20, minutes=i // group)
            st.create("A_SalesOrder", {
                "SalesOrderType": "OR", "SalesOrganization": "1010", "DistributionChannel": "10",
                "OrganizationDivision": "00", "SoldToParty": partner_keys[i % len(partner_keys)][0],
                "PurchaseOrderByCustomer": f"SEED-PO-{i + 1:05d}", "TransactionCurrency": "EUR",
                "SalesOrderDate": st.clock,
                "to_Item": [{"Material": f"TG{11 + j}", "RequestedQuantity": str(1 + j + i % 3),
                             "RequestedQuantityUnit": "PC",
                             "NetPriceAmount": f"{10 + 5 * j}.50"} for j in range(2)]})
        for i, (order_key, order) in enumerate(list(st.tables["A_SalesOrder"].items())[:bills]):
            st.clock = start + dt.timedelta(days=30, minutes=i // group)
            items = st.children(TYPES["A_SalesOrder"], order, "to_Item")
            net = order["TotalNetAmount"]
            st.create("A_BillingDocument", {
                "BillingDocumentType": "F2", "SDDocumentCategory": "M",
                "BillingDocumentDate": st.clock, "SoldToParty": order["SoldToParty"],
                "PayerParty": order["SoldToParty"], "TransactionCurrency": "EUR",
                "TotalNetAmount": str(net), "TotalTaxAmount": str((net * Decimal("0.19"))
                                                                  .quantize(Decimal("0.01"))),
                "CustomerPaymentTerms": "0001", "AccountingPostingStatus": "C",
                "OverallBillingStatus": "C", "BillingDocumentIsCancelled": False,
                "to_Item": [{"Material": it["Material"], "BillingQuantity": str(
                    it["RequestedQuantity"]), "BillingQuantityUnit": "PC",
                    "NetAmount": str(it["NetAmount"]), "TransactionCurrency": "EUR",
                    "SalesDocument": order_key[0], "SalesDocumentItem": it["SalesOrderItem"]}
                    for it in items]})
        for i in range(requirements):
            st.clock = start + dt.timedelta(days=40, minutes=i // group)
            st.create("PlannedIndepRqmt", {
                "Product": f"TG{11 + i % 5}", "Plant": "1010" if i < 5 else "1710",
                "MRPArea": "1010" if i < 5 else "1710", "PlndIndepRqmtType": "",
                "PlndIndepRqmtVersion": "00", "RequirementPlan": "", "RequirementSegment": "",
                "PlndIndepRqmtIsActive": "X",
                "to_PlndIndepRqmtItem": [{"PlndIndepRqmtPeriod": f"2024{m:02d}",
                                          "PeriodType": "M", "PlannedQuantity": str(10 * m),
                                          "UnitOfMeasure": "PC",
                                          "WorkingDayDate": dt.datetime(2024, m, 1,
                                                                        tzinfo=dt.UTC)}
                                         for m in (1, 2, 3)]})
        st.clock = start + dt.timedelta(days=60)

    # -- control API -------------------------------------------------------------
    @staticmethod
    def entity_set(stream: str) -> str:
        return STREAM_SETS.get(stream, stream)

    def _live(self, stream: str) -> list[dict]:
        rows = self.store.tables[self.entity_set(stream)].values()
        return [r for r in rows if not r.get("IsMarkedForArchiving")]

    def count(self, stream: str) -> int:
        with self._lock:
            return len(self._live(stream))

    def _change(self, stream: str, n: int, **values: Any) -> list[str]:
        with self._lock:
            etype = TYPES[self.entity_set(stream)]
            self.store.tick(60)
            rows = self._live(stream)[:n]
            for row in rows:
                row.update(values)
                self.store.stamp(etype, row, created=False)
            return ["|".join(str(row[k]) for k in etype.keys) for row in rows]

    def touch(self, stream: str, n: int) -> list[str]:
        return self._change(stream, n, SearchTerm2="TOUCHED") \
            if self.entity_set(stream) == "A_BusinessPartner" else self._change(stream, n)

    def delete_records(self, stream: str, n: int) -> list[str]:
        etype = TYPES[self.entity_set(stream)]
        if "IsMarkedForArchiving" not in etype.props:
            raise ValueError(f"{stream} has no archiving flag in this emulator")
        return self._change(stream, n, IsMarkedForArchiving=True)

    def sample_rows(self, stream: str, n: int) -> list[dict[str, Any]]:
        with self._lock:
            start, self._new_rows = self._new_rows, self._new_rows + n
        name = self.entity_set(stream)
        if name == "A_BusinessPartner":
            return [{"BusinessPartnerIDByExtSystem": f"CRM{start + i + 1:06d}",
                     "OrganizationBPName1": f"New Customer {start + i + 1} AG",
                     "SearchTerm1": f"NEW{start + i + 1}",
                     "to_BusinessPartnerAddress": {"CityName": "Köln", "PostalCode": "50667",
                                                   "StreetName": "Domkloster 4",
                                                   "Country": "DE"},
                     "to_Customer": {"VATRegistration": f"DE{100000000 + start + i}"}}
                    for i in range(n)]
        if name == "A_SalesOrder":
            party = next(iter(self.store.tables["A_Customer"]))[0]
            return [{"PurchaseOrderByCustomer": f"CRM-ORDER-{start + i + 1:06d}",
                     "SoldToParty": party, "TransactionCurrency": "EUR",
                     "to_Item": [{"Material": "TG11", "RequestedQuantity": "2",
                                  "RequestedQuantityUnit": "PC", "NetPriceAmount": "19.90"}]}
                    for i in range(n)]
        if name == "PlannedIndepRqmt":
            return [{"Product": f"FC{start + i + 1:04d}", "Plant": "1010", "MRPArea": "1010",
                     "PlndIndepRqmtType": "", "PlndIndepRqmtVersion": "00",
                     "RequirementPlan": "", "RequirementSegment": "",
                     "to_PlndIndepRqmtItem": [{"PlndIndepRqmtPeriod": "202407",
                                               "PeriodType": "M", "PlannedQuantity": "40",
                                               "UnitOfMeasure": "PC"}]} for i in range(n)]
        raise ValueError(f"{stream} is read-only in this emulator")

    def invalid_row(self, stream: str) -> dict[str, Any]:
        row = self.sample_rows(stream, 1)[0]
        if self.entity_set(stream) == "A_BusinessPartner":
            row.pop("OrganizationBPName1")
        elif self.entity_set(stream) == "A_SalesOrder":
            row["SoldToParty"] = "9999999"
        else:
            row["to_PlndIndepRqmtItem"][0].pop("PlannedQuantity")
        return row

    def exhaust_limit(self) -> None:
        self.quota_exhausted = True

    def expire_tokens(self) -> None:
        """Drop every session (cookies) and with them every CSRF token."""
        with self._lock:
            self._sessions.clear()

    def invalidate_csrf(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session["token"] = None

    def invalidate_csrf_after(self, writes: int) -> None:
        """Invalidate every CSRF token once ``writes`` more modifying calls went through."""
        with self._lock:
            self._invalidate_after = writes

    def bump_before_write(self, stream: str, key: str) -> None:
        """Change the record (new etag) just before the next write to it arrives."""
        etype = TYPES[self.entity_set(stream)]
        with self._lock:
            self._bump.add((etype.name, tuple(key.split("|"))))

    def find(self, stream: str, **props: Any) -> list[dict[str, Any]]:
        """Records (as the API would send them, expanded) whose properties equal ``props``."""
        with self._lock:
            etype = TYPES[self.entity_set(stream)]
            return [self._json(etype, row, list(etype.navs))
                    for row in self.store.tables[etype.name].values()
                    if all(row.get(k) == v for k, v in props.items())]

    # -- WSGI ----------------------------------------------------------------------
    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"].upper()
        path = unquote(environ.get("PATH_INFO", ""))
        query = query_fields(environ, keep_blank_values=True)
        body = read_body(environ)
        headers = {"dataserviceversion": "2.0"}
        truncate = False
        self.count_request()
        try:
            truncate = self.take_fault(path, self._refusal)
            self._authenticate(environ)
            if self.quota_exhausted:
                raise _Reply(429, {"fault": {
                    "faultstring": "Rate limit quota violation. Quota limit  exceeded. "
                                   "Identifier : EMU_USER",
                    "detail": {"errorcode": "policies.ratelimit.QuotaViolation"}}})
            with self._lock:
                sid, fresh = self._session(environ)
                if fresh:
                    headers["set-cookie"] = f"{COOKIE}={sid}; path=/; HttpOnly"
                status, payload, extra = self._route(method, path, query, body, environ, sid)
            headers.update(extra)
        except _Reply as reply:
            status, payload = reply.status, reply.body
            headers.update(reply.headers)
        except EmulatorError as exc:
            reply = _error(exc)
            status, payload = reply.status, reply.body
        return respond(start_response, status, payload, headers, truncate=truncate,
                       json_type="application/json; charset=utf-8")

    def _refusal(self, kind: int, retry_after: int | None) -> _Reply:
        if kind == 429:
            return _Reply(429, error_body("/IWFND/CM_BEC/026", "Too many requests"),
                          {"Retry-After": self.retry_after_header(retry_after)})
        reply = _Reply(kind, error_body("/IWFND/CM_BEC/026" if kind == 503 else
                                             "/IWBEP/CX_MGW_TECH_EXCEPTION",
                                             "Service temporarily unavailable" if kind == 503
                                             else "In the context of Data Services an unknown "
                                             "internal server error occurred"))
        if retry_after is not None:
            reply.headers["Retry-After"] = str(retry_after)
        return reply

    @staticmethod
    def _authenticate(environ) -> None:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        expected = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        if auth != f"Basic {expected}":
            raise _Reply(401, "<html><body>Logon failed</body></html>", {
                "WWW-Authenticate": 'Basic realm="SAP NetWeaver Application Server [EMU/100]"',
                "Content-Type": "text/html; charset=utf-8"})

    def _session(self, environ) -> tuple[str, bool]:
        match = re.search(rf"{COOKIE}=([\w-]+)", environ.get("HTTP_COOKIE", ""))
        if match and match[1] in self._sessions:
            return match[1], False
        sid = secrets.token_urlsafe(16)
        self._sessions[sid] = {"token": None, "issued": 0.0}
        return sid, True

    def _csrf_ok(self, environ, sid: str) -> bool:
        session = self._sessions[sid]
        sent = environ.get("HTTP_X_CSRF_TOKEN", "")
        fresh = time.monotonic() - session["issued"] < self.csrf_lifetime
        return bool(session["token"]) and sent == session["token"] and fresh

    # -- routing -------------------------------------------------------------------
    def _route(self, method, path, query, body, environ, sid):
        match = _PATH.match(path)
        if match is None or match["service"] not in SERVICES:
            raise EmulatorError(404, "/IWFND/MED/170", f"No service found for namespace '', "
                                f"name '{match['service'] if match else path}', version '0001'")
        service, rest = match["service"], match["rest"] or "/"
        extra: dict[str, str] = {}
        if environ.get("HTTP_X_CSRF_TOKEN", "").lower() == "fetch" and method == "GET":
            session = self._sessions[sid]
            if not session["token"] or time.monotonic() - session["issued"] >= \
                    self.csrf_lifetime:
                session["token"], session["issued"] = secrets.token_urlsafe(18), time.monotonic()
            extra["x-csrf-token"] = session["token"]
        if method in _WRITES:
            if not self._csrf_ok(environ, sid):
                self.csrf_refusals += 1
                raise _Reply(403, "CSRF token validation failed", {"x-csrf-token": "Required"})
            self._count_write()
            self._apply_bumps()
        if rest == "/" and method == "GET":
            sets = [n for n, t in TYPES.items() if t.service == service]
            return 200, {"d": {"EntitySets": sets}}, extra
        if rest == "/$metadata" and method == "GET":
            return 200, self._metadata(service), {**extra, "Content-Type": "application/xml"}
        if rest == "/$batch" and method == "POST":
            status, data, headers = self._batch(service, body, environ.get("CONTENT_TYPE", ""))
            return status, data, {**extra, **headers}
        status, payload, headers = self._resource(service, method, rest, query, body,
                                                  environ.get("HTTP_IF_MATCH"))
        return status, payload, {**extra, **headers}

    def _apply_bumps(self) -> None:
        """Another user changes the records marked by :meth:`bump_before_write`."""
        for type_name, key in list(self._bump):
            self._bump.discard((type_name, key))
            entity = self.store.tables[type_name].get(key)
            if entity is None:
                continue
            if type_name == "A_BusinessPartner":
                entity["SearchTerm2"] = "BUMPED"
            self.store.tick()
            self.store.stamp(TYPES[type_name], entity, created=False)

    def _count_write(self) -> None:
        self.writes_accepted += 1
        if self._invalidate_after is not None:
            self._invalidate_after -= 1
            if self._invalidate_after <= 0:
                self._invalidate_after = None
                for session in self._sessions.values():
                    session["token"] = None

    def _metadata(self, service: str) -> str:
        types = [t for t in TYPES.values() if t.service == service]
        entity_types = "".join(f'<EntityType Name="{t.name}Type"/>' for t in types)
        sets = "".join(f'<EntitySet Name="{t.name}" EntityType="{service}.{t.name}Type"/>'
                       for t in types)
        return ('<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="1.0" '
                'xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx"><edmx:DataServices>'
                f'<Schema Namespace="{service}">{entity_types}<EntityContainer '
                f'Name="{service}_Entities">{sets}</EntityContainer></Schema>'
                '</edmx:DataServices></edmx:Edmx>')

    # -- $batch ----------------------------------------------------------------------
    def _batch(self, service: str, body: bytes, content_type: str):
        try:
            parts = batch.decode(body, content_type)
        except ValueError as exc:
            raise EmulatorError(400, "/IWBEP/CM_MGW_RT/004", f"Malformed $batch: {exc}") \
                from None
        answers: list[batch.Part] = []
        for part in parts:
            if isinstance(part, batch.Message):
                answers.append(self._inner(service, part))
                continue
            saved = self.store.snapshot()
            replies = []
            for op in part:
                reply = self._inner(service, op)
                if (reply.status or 500) >= 400:
                    self.store.restore(saved)
                    replies = reply
                    break
                replies.append(reply)
            answers.append(replies)
        data, ctype = batch.encode(answers, prefix="batchresponse")
        return 202, data, {"Content-Type": ctype}

    def _inner(self, service: str, op: batch.Message) -> batch.Message:
        target, _, raw_query = (op.target or "").partition("?")
        query = {k: v[-1] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
        try:
            body = op.body if op.method in _WRITES else b""
            status, payload, headers = self._resource(service, op.method or "GET",
                                                      "/" + unquote(target).lstrip("/"),
                                                      query, body, op.header("If-Match"))
        except EmulatorError as exc:
            reply = _error(exc)
            status, payload, headers = reply.status, reply.body, {}
        except _Reply as reply:
            status, payload, headers = reply.status, reply.body, reply.headers
        data = b"" if payload is None else json.dumps(payload).encode()
        return batch.Message(status=status, body=data, headers={
            "Content-Type": "application/json", **headers})

    # -- resources --------------------------------------------------------------------
    def _resource(self, service, method, rest, query, body, if_match):
        match = _RESOURCE.match(rest)
        etype = TYPES.get(match["set"]) if match else None
        if etype is None or etype.service != service:
            raise EmulatorError(404, "/IWBEP/CM_MGW_RT/025",
                                f"Resource not found for segment '{rest.strip('/')}'")
        expand = [e for e in query.get("$expand", "").split(",") if e]
        self._check_expand(etype, expand)
        if match["key"] is None:
            if method == "GET":
                return 200, self._list(etype, list(self.store.tables[etype.name].values()),
                                       query, rest), {}
            if method == "POST":
                return self._create(etype, body, None)
            raise EmulatorError(405, "/IWBEP/CM_MGW_RT/015", f"Method {method} not allowed")
        entity = self._lookup(etype, match["key"])
        if match["nav"]:
            nav = match["nav"]
            if nav not in etype.navs:
                raise EmulatorError(404, "/IWBEP/CM_MGW_RT/025", f"Navigation {nav} unknown")
            child_type = TYPES[etype.navs[nav][0]]
            if method == "POST" and etype.navs[nav][1] == "many":
                return self._create(child_type, body, (etype, entity))
            if method != "GET":
                raise EmulatorError(405, "/IWBEP/CM_MGW_RT/015", f"Method {method} not allowed")
            children = self.store.children(etype, entity, nav)
            if etype.navs[nav][1] == "one":
                return 200, {"d": self._json(child_type, children[0], [])} if children \
                    else {"d": None}, {}
            return 200, self._list(child_type, children, query, rest), {}
        if method == "GET":
            return 200, {"d": self._json(etype, entity, expand)}, {"etag": entity["__etag"]}
        self._check_etag(etype, entity, if_match)
        self.store.tick()
        if method == "DELETE":
            if etype.name in _UNDELETABLE:
                raise EmulatorError(405, "/IWBEP/CM_MGW_RT/015", f"{etype.name} cannot be "
                                    "deleted; mark it for archiving (IsMarkedForArchiving)")
            self.store.delete(etype, entity)
            return 204, None, {}
        payload = self._payload(body)
        if method == "PUT":
            payload = {**{k: None for k in etype.props if k not in etype.keys}, **payload}
        self.store.update(etype.name, entity, payload)
        return 204, None, {"etag": entity["__etag"]}

    @staticmethod
    def _check_expand(etype: EntityType, expand: list[str]) -> None:
        """``$expand=a,a/b``: every segment a navigation property of the type before it."""
        for path in expand:
            current = etype
            for nav in path.split("/"):
                if nav not in current.navs:
                    raise EmulatorError(400, "/IWBEP/CM_MGW_RT/011",
                                        f"Property {nav} not found in type {current.name}Type")
                current = TYPES[current.navs[nav][0]]

    def _check_etag(self, etype: EntityType, entity: dict, if_match: str | None) -> None:
        if not if_match:
            raise EmulatorError(428, "/IWBEP/CM_MGW_RT/082",
                                "Precondition required: send If-Match with the entity's etag")
        if if_match != "*" and if_match != entity["__etag"]:
            self.etag_refusals += 1
            raise EmulatorError(412, "/IWBEP/CM_MGW_RT/020", "The data is stale. Please "
                                "reread the data and apply the changes again.")

    @staticmethod
    def _payload(body: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            raise EmulatorError(400, "/IWBEP/CM_MGW_RT/004", "Malformed JSON body") from None
        if not isinstance(payload, dict):
            raise EmulatorError(400, "/IWBEP/CM_MGW_RT/004", "JSON body must be an object")
        return payload.get("d", payload) if isinstance(payload.get("d"), dict) else payload

    def _create(self, etype: EntityType, body: bytes, parent):
        self.store.tick()
        entity = self.store.create(etype.name, self._payload(body), parent)
        if parent is not None:
            self.store.update(parent[0].name, parent[1], {})
        navs = list(etype.navs)
        return 201, {"d": self._json(etype, entity, navs)}, {
            "location": self._uri(etype, entity), "etag": entity["__etag"]}

    def _lookup(self, etype: EntityType, predicate: str) -> dict:
        values: dict[str, str] = {}
        if "=" in predicate:
            for pair in re.findall(r"(\w+)='((?:[^']|'')*)'", predicate):
                values[pair[0]] = pair[1].replace("''", "'")
        else:
            values[etype.keys[0]] = predicate.strip("'").replace("''", "'")
        key = tuple(values.get(k, "") for k in etype.keys)
        entity = self.store.tables[etype.name].get(key)
        if entity is None:
            raise EmulatorError(404, "/IWBEP/CM_MGW_RT/025",
                                f"Resource not found for segment '{etype.name}({predicate})'")
        return entity

    def _list(self, etype: EntityType, rows: list[dict], query: dict[str, str], rest: str):
        if query.get("$filter"):
            try:
                keep = parse_filter(query["$filter"], set(etype.props), V2)
            except FilterError as exc:
                raise EmulatorError(400, "/IWBEP/CM_MGW_RT/012", str(exc)) from None
            rows = [r for r in rows if keep(r)]
        order = [o.strip() for o in query.get("$orderby", "").split(",") if o.strip()] \
            or list(etype.keys)
        for item in reversed(order):
            name, _, direction = item.partition(" ")
            if name not in etype.props:
                raise EmulatorError(400, "/IWBEP/CM_MGW_RT/011",
                                    f"Property {name} not found in type {etype.name}Type")
            rows = sorted(rows, key=lambda r, n=name: (r.get(n) is not None, r.get(n)
                                                       if r.get(n) is not None else 0),
                          reverse=direction.strip().lower() == "desc")
        total = len(rows)
        skip = int(query.get("$skip") or 0) + int(query.get("$skiptoken") or 0)
        expand = [e for e in query.get("$expand", "").split(",") if e]
        select = [s for s in query.get("$select", "").split(",") if s]
        for name in select:   # a property the entity type does not have, as Gateway says it
            if name.split("/")[0] not in etype.props and name.split("/")[0] not in etype.navs:
                raise EmulatorError(400, "/IWBEP/CM_MGW_RT/011",
                                    f"Property {name} not found in type {etype.name}Type")
        out: dict[str, Any] = {}
        if "$top" in query:
            page = rows[skip: skip + int(query["$top"])]
        else:
            page = rows[skip: skip + self.page_size]
            if skip + self.page_size < total:
                params = {k: v for k, v in query.items() if k != "$skiptoken"}
                params["$skiptoken"] = str(skip + self.page_size)
                out["__next"] = f"{self.base_url}/sap/opu/odata/sap/{etype.service}" \
                                f"{rest}?{urlencode(params)}"
        results = [self._json(etype, r, expand, select) for r in page]
        body: dict[str, Any] = {"results": results, **out}
        if query.get("$inlinecount") == "allpages":
            body["__count"] = str(total)
        return {"d": body}

    def _uri(self, etype: EntityType, entity: dict) -> str:
        if len(etype.keys) == 1:
            pred = f"'{entity[etype.keys[0]]}'"
        else:
            pred = ",".join(f"{k}='{entity[k]}'" for k in etype.keys)
        return f"{self.base_url}/sap/opu/odata/sap/{etype.service}/{etype.name}({pred})"

    def _json(self, etype: EntityType, entity: dict, expand: list[str],
              select: list[str] | None = None) -> dict[str, Any]:
        uri = self._uri(etype, entity)
        out: dict[str, Any] = {"__metadata": {"id": uri, "uri": uri,
                                              "type": f"{etype.service}.{etype.name}Type",
                                              "etag": entity["__etag"]}}
        for name, kind in etype.props.items():
            if not select or name in select or name in etype.keys:
                out[name] = _encode(kind, entity.get(name))
        for nav, (target, many) in etype.navs.items():
            if nav not in expand and not any(e.startswith(f"{nav}/") for e in expand):
                out[nav] = {"__deferred": {"uri": f"{uri}/{nav}"}}
                continue
            children = self.store.children(etype, entity, nav)
            child_type = TYPES[target]
            deeper = [e.split("/", 1)[1] for e in expand if e.startswith(f"{nav}/")]
            if many == "many":
                out[nav] = {"results": [self._json(child_type, c, deeper) for c in children]}
            else:
                out[nav] = self._json(child_type, children[0], deeper) if children else None
        return out


def make_app(seed: int = 42, **options: Any) -> SapEmulator:
    """Build an emulator app (a WSGI callable with the test-control methods)."""
    return SapEmulator(seed=seed, **options)


def main(argv: list[str] | None = None) -> int:
    """Run the emulator on a port until interrupted."""
    return run_emulator(argv, "crm2erp.emulators.sap.app",
                        "Run the SAP S/4HANA OData v2 emulator.", 8702, make_app,
                        f"SAP emulator on {{url}} (basic auth {USERNAME} / {PASSWORD})",
                        {"business_partners": (count, 120), "page_size": (count, 100)})


if __name__ == "__main__":
    raise SystemExit(main())

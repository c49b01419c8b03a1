"""A protocol-faithful ERPNext / Frappe REST emulator (WSGI), for tests and demos.

Run it with :func:`crm2erp.emulators.kernel.server.serve_wsgi` or from the command line::

    python -m crm2erp.emulators.erpnext.app --port 8703 --customers 300

Implemented as Frappe does it:

* ``Authorization: token <api_key>:<api_secret>`` (``EMU_KEY`` / ``EMU_SECRET``);
* ``GET /api/resource/{DocType}`` with ``fields``, ``filters`` (JSON list of
  ``[field, op, value]`` or a dict), ``order_by``, ``limit_start``,
  ``limit_page_length`` (default 20; list calls return no child tables);
* ``GET/PUT/DELETE /api/resource/{DocType}/{name}``, ``POST /api/resource/{DocType}``;
  ``docstatus`` 0 draft / 1 submitted (no change after submit) / 2 cancelled;
* naming (customer name, ``SAL-ORD-.YYYY.-.#####``, ``ACC-SINV-.YYYY.-.#####``),
  ``Deleted Document`` records for deletions, mandatory and link validation;
* error bodies with ``exc_type``, ``exception`` and ``_server_messages``;
* ``Address`` and ``Contact`` linked to a Customer through their ``links`` child
  table (``Dynamic Link``: ``link_doctype``/``link_name``), listed with a child
  table filter ``[["Dynamic Link", "link_name", "=", name]]``; Contact's
  ``email_ids`` (``Contact Email``: ``email_id``, ``is_primary``) and ``phone_nos``
  (``Contact Phone``: ``phone``, ``is_primary_phone``, ``is_primary_mobile_no``)
  whose primary rows set ``email_id``/``phone``/``mobile_no``; one preferred
  ``is_primary_address``/``is_shipping_address``/``is_primary_contact`` per linked
  document; ``owner`` is the user who created a record; deleting a Customer
  deletes the addresses and contacts linked to it alone;
* the site rate limit (``429``, ``Retry-After``, ``X-RateLimit-*``), injectable
  faults (429, 500, 503, cut bodies).
"""

from __future__ import annotations

__all__ = ["ErpNextEmulator", "make_app", "main", "API_KEY", "API_SECRET"]

import datetime as dt
import json
import logging
import secrets
import threading
from typing import Any
from urllib.parse import unquote

import pycountry

from crm2erp.emulators.kernel.emulation import (
    FaultInjection,
    Reply,
    query_fields,
    read_body,
    respond,
)
from crm2erp.emulators.kernel.server import count, run_emulator
from crm2erp.emulators.kernel.store import RecordStore

log = logging.getLogger(__name__)
API_KEY, API_SECRET = "EMU_KEY", "EMU_SECRET"
STREAM_DOCTYPES = {"customers": "Customer", "sales_orders": "Sales Order",
                   "sales_invoices": "Sales Invoice"}
# DocType -> (mandatory fields, links field -> DocType, child tables field -> child DocType)
_SCHEMA: dict[str, tuple[list[str], dict[str, str], dict[str, str]]] = {
    "Customer": (["customer_name"], {"customer_group": "Customer Group"}, {}),
    "Item": (["item_code"], {}, {}),
    "Customer Group": ([], {}, {}),
    "Sales Order": (["customer", "transaction_date", "delivery_date"],
                    {"customer": "Customer"}, {"items": "Sales Order Item"}),
    "Sales Invoice": (["customer", "posting_date"], {"customer": "Customer"},
                      {"items": "Sales Invoice Item"}),
    "Deleted Document": ([], {}, {}),
    "Country": ([], {}, {}),
    "Address": (["address_type", "address_line1", "city", "country"], {"country": "Country"},
                {"links": "Dynamic Link"}),
    "Contact": (["first_name"], {}, {"links": "Dynamic Link", "email_ids": "Contact Email",
                                     "phone_nos": "Contact Phone"}),
}
_CHECKS = {"Customer": ("disabled",),
           "Address": ("is_primary_address", "is_shipping_address", "disabled"),
           "Contact": ("is_primary_contact",)}
_ITEM_TABLES = {"Sales Order Item", "Sales Invoice Item"}
# preference flags Frappe keeps unique among the records linked to the same document
_PREFERRED = {"Address": ("is_primary_address", "is_shipping_address"),
              "Contact": ("is_primary_contact",)}
# Frappe's Country records: the name, and the ISO code in lower case
_COUNTRIES = {c.name: c.alpha_2.lower() for c in pycountry.countries}
_UNIQUE = {"Customer": ["custom_crm_id"], "Sales Order": ["custom_crm_id"]}
_CHILD_MANDATORY = {"Sales Order Item": ["item_code", "qty"], "Sales Invoice Item": ["item_code"],
                    "Dynamic Link": ["link_doctype", "link_name"],
                    "Contact Email": ["email_id"], "Contact Phone": ["phone"]}
API_USER = "crm@example.com"


class FrappeError(Exception):
    def __init__(self, status: int, exc_type: str, message: str):
        super().__init__(message)
        self.status, self.exc_type, self.message = status, exc_type, message

    def body(self) -> dict[str, Any]:
        msg = {"message": self.message, "title": "Message", "indicator": "red",
               "raise_exception": 1, "__frappe_exc_id": secrets.token_hex(8)}
        return {"exception": f"frappe.exceptions.{self.exc_type}: {self.message}",
                "exc_type": self.exc_type,
                "exc": json.dumps([f"Traceback (most recent call last): ... {self.exc_type}"]),
                "_server_messages": json.dumps([json.dumps(msg)])}


def _stamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


class ErpNextEmulator(FaultInjection):
    """The WSGI app; its public methods are the test-control API (EmulatorControl)."""

    def __init__(self, *, seed: int = 42, customers: int = 120, sales_invoices: int = 30,
                 group: int = 7, fault_rate: float = 0.0, retry_after: int = 1):
        self.base_url = "http://127.0.0.1"
        # documents by doctype and name; Frappe stamps to the microsecond
        self.store = RecordStore(_SCHEMA, seed=seed, start=dt.datetime(2024, 3, 1, 9, 0, 0, 123456))
        self.quota_reset: int | None = None
        self._lock = threading.RLock()
        self.init_faults(self.store.rng, fault_rate=fault_rate, fault_kinds=(429, 500, 503),
                         retry_after=retry_after)
        self._new = 0
        self._seed(customers, sales_invoices, group)

    # -- seed ------------------------------------------------------------------------
    def _seed(self, customers: int, invoices: int, group: int) -> None:
        for group_name in ("Commercial", "Individual", "Government"):
            self._insert("Customer Group", {"name": group_name,
                                            "customer_group_name": group_name})
        for country, code in _COUNTRIES.items():
            self._insert("Country", {"name": country, "country_name": country, "code": code})
        for n in range(11, 21):
            self._insert("Item", {"name": f"TG{n}", "item_code": f"TG{n}",
                                  "item_name": f"Trading Good {n}", "stock_uom": "Nos"})
        start = self.store.clock
        names = ["Alpen", "Nordsee", "Rhein", "Delta", "Blau", "Hansa", "Solar", "Kraft"]
        for i in range(customers):
            self.store.clock = start + dt.timedelta(minutes=i // group)
            self._insert("Customer", {
                "customer_name": f"{self.store.rng.choice(names)} Handel {i + 1} GmbH",
                "customer_type": "Company", "customer_group": "Commercial",
                "territory": "Germany", "default_currency": "EUR",
                "tax_id": f"DE{200000000 + i}", "custom_crm_id": None})
        customer_names = list(self.store.tables["Customer"])
        for i in range(invoices):
            self.store.clock = start + dt.timedelta(days=5, minutes=i // group)
            qty, rate = 1 + i % 4, 25.0 + i
            self._insert("Sales Invoice", {
                "customer": customer_names[i % len(customer_names)],
                "posting_date": self.store.clock.date().isoformat(),
                "due_date": (self.store.clock.date() + dt.timedelta(days=30)).isoformat(),
                "currency": "EUR", "docstatus": 1,
                "items": [{"item_code": "TG11", "qty": qty, "rate": rate}]})
        self.store.clock = start + dt.timedelta(days=30)

    # -- storage -------------------------------------------------------------------------
    def _name(self, doctype: str, doc: dict[str, Any]) -> str:
        if doctype == "Customer":
            base, name, n = doc["customer_name"], doc["customer_name"], 0
            while name in self.store.tables["Customer"]:
                n += 1
                name = f"{base} - {n}"
            return name
        if doctype in ("Address", "Contact"):
            link = next((row.get("link_name") for row in doc.get("links") or []), None)
            if doctype == "Address":
                base = f"{doc.get('address_title') or link or 'Address'}-{doc['address_type']}"
            else:
                full = " ".join(str(doc.get(f)) for f in ("first_name", "last_name")
                                if doc.get(f))
                base = f"{full}-{link}" if link else full
            name, n = base, 0
            while name in self.store.tables[doctype]:
                n += 1
                name = f"{base}-{n}"
            return name
        prefix = {"Sales Order": "SAL-ORD", "Sales Invoice": "ACC-SINV"}.get(doctype)
        if prefix is None:
            return doc.get("name") or secrets.token_hex(5)
        key = f"{prefix}-{self.store.clock.year}"
        return f"{key}-{self.store.next_number(key):05d}"

    def _validate(self, doctype: str, doc: dict[str, Any], old: dict | None = None) -> None:
        mandatory, links, children = _SCHEMA[doctype]
        missing = [f for f in mandatory if doc.get(f) in (None, "")]
        if missing:
            label = ", ".join(f.replace("_", " ").title() for f in missing)
            raise FrappeError(417, "MandatoryError",
                              f"Error: Value missing for {doctype}: {label}")
        for field, target in links.items():
            if doc.get(field) and doc[field] not in self.store.tables[target]:
                raise FrappeError(417, "LinkValidationError",
                                  f"Could not find {field.replace('_', ' ').title()}: "
                                  f"{doc[field]}")
        for field in _UNIQUE.get(doctype, []):
            value = doc.get(field)
            clash = [n for n, d in self.store.tables[doctype].items()
                     if value and d.get(field) == value and (old is None or n != old["name"])]
            if clash:
                raise FrappeError(409, "DuplicateEntryError",
                                  f"{doctype} with {field} {value} already exists: {clash[0]}")
        for field, child in children.items():
            for row in doc.get(field) or []:
                need = [f for f in _CHILD_MANDATORY.get(child, []) if row.get(f) in (None, "")]
                if need:
                    raise FrappeError(417, "MandatoryError", f"Error: Value missing for "
                                      f"{child} row #{row.get('idx', '?')}: {need[0]}")
                if child == "Dynamic Link" and row["link_name"] not in self.store.tables.get(
                        row["link_doctype"], {}):
                    raise FrappeError(417, "LinkValidationError",
                                      f"Could not find {row['link_doctype']}: "
                                      f"{row['link_name']}")
            for flag in ("is_primary", "is_primary_phone", "is_primary_mobile_no"):
                if sum(1 for row in doc.get(field) or [] if row.get(flag)) > 1:
                    raise FrappeError(417, "ValidationError",
                                      f"Only one {child} can be set as {flag}")
                if row.get("item_code") and row["item_code"] not in self.store.tables["Item"]:
                    raise FrappeError(417, "LinkValidationError",
                                      f"Row #{row.get('idx')}: Could not find Item: "
                                      f"{row['item_code']}")

    def _children(self, doctype: str, doc: dict[str, Any]) -> None:
        total = 0.0
        for field, child in _SCHEMA[doctype][2].items():
            rows = []
            for idx, row in enumerate(doc.get(field) or [], start=1):
                row = dict(row)
                row.update(name=row.get("name") or secrets.token_hex(5), idx=idx,
                           parent=doc["name"], parenttype=doctype, parentfield=field,
                           doctype=child, docstatus=doc.get("docstatus", 0))
                rows.append(row)
                if child not in _ITEM_TABLES:
                    continue
                row["qty"] = float(row.get("qty") or 0)
                row["rate"] = float(row.get("rate") or 0)
                row["amount"] = round(row["qty"] * row["rate"], 2)
                total += row["amount"]
            doc[field] = rows
        if doctype == "Contact":  # Contact.validate: the primary rows give the header fields
            primary = {flag: next((r[value] for r in doc.get(table) or [] if r.get(flag)), None)
                       for table, value, flag in (("email_ids", "email_id", "is_primary"),
                                                  ("phone_nos", "phone", "is_primary_phone"),
                                                  ("phone_nos", "phone", "is_primary_mobile_no"))}
            doc["email_id"], doc["phone"], doc["mobile_no"] = primary.values()
            doc["full_name"] = " ".join(str(doc.get(f)) for f in ("first_name", "last_name")
                                        if doc.get(f))
        if doctype in ("Sales Order", "Sales Invoice"):
            doc["net_total"] = doc["total"] = round(total, 2)
            doc["total_taxes_and_charges"] = round(total * 0.19, 2)
            doc["grand_total"] = round(total * 1.19, 2)
            if doctype == "Sales Invoice":
                doc.setdefault("outstanding_amount", doc["grand_total"])
                doc["status"] = {0: "Draft", 2: "Cancelled"}.get(
                    doc.get("docstatus", 0), "Paid" if not doc["outstanding_amount"]
                    else "Unpaid")
            else:
                doc["status"] = {0: "Draft", 1: "To Deliver and Bill", 2: "Cancelled"}[
                    doc.get("docstatus", 0)]

    def _insert(self, doctype: str, payload: dict[str, Any],
                owner: str = "Administrator") -> dict[str, Any]:
        doc = {k: v for k, v in payload.items() if k not in ("name", "doctype")} \
            if doctype in ("Customer", "Sales Order", "Sales Invoice", "Address", "Contact") \
            else dict(payload)
        self._validate(doctype, doc)
        doc["name"] = self._name(doctype, {**payload, **doc})
        doc.setdefault("docstatus", 0)
        for check in _CHECKS.get(doctype, ()):   # Check fields default to 0
            doc[check] = int(doc.get(check) or 0)
        if doc["docstatus"] not in (0, 1):
            raise FrappeError(417, "ValidationError", "Cannot create a cancelled document")
        stamp = _stamp(self.store.clock)
        doc.update(doctype=doctype, owner=owner, creation=stamp, modified=stamp,
                   modified_by=owner)
        self._children(doctype, doc)
        self.store.put(doctype, doc["name"], doc)
        self._prefer(doctype, doc)
        return doc

    def _prefer(self, doctype: str, doc: dict[str, Any]) -> None:
        """Frappe's validate_preferred_address / primary contact: one preferred record
        per linked document - setting the flag here clears it on the others."""
        linked = {(r["link_doctype"], r["link_name"]) for r in doc.get("links") or []}
        for flag in _PREFERRED.get(doctype, ()):
            if not doc.get(flag):
                continue
            for other in self.store.tables[doctype].values():
                if other is not doc and other.get(flag) and linked & {
                        (r["link_doctype"], r["link_name"]) for r in other.get("links") or []}:
                    other[flag] = 0
                    other["modified"] = _stamp(self.store.clock)

    def _update(self, doctype: str, doc: dict[str, Any], payload: dict[str, Any]) -> None:
        new_status = payload.get("docstatus", doc["docstatus"])
        changes = {k: v for k, v in payload.items()
                   if k not in ("name", "doctype", "docstatus", "modified", "creation")
                   and doc.get(k) != v}
        if doc["docstatus"] == 2:
            raise FrappeError(417, "ValidationError", "Cannot edit cancelled document")
        if doc["docstatus"] == 1 and changes:
            raise FrappeError(417, "UpdateAfterSubmitError", f"Not allowed to change "
                              f"{sorted(changes)[0]} after submission")
        if (doc["docstatus"], new_status) not in ((0, 0), (0, 1), (1, 1), (1, 2)):
            raise FrappeError(417, "ValidationError", "Cannot change docstatus from "
                              f"{doc['docstatus']} to {new_status}")
        merged = {**doc, **changes, "docstatus": new_status}
        self._validate(doctype, merged, old=doc)
        self._children(doctype, merged)
        merged["modified"] = _stamp(self.store.clock)
        doc.clear()
        doc.update(merged)
        self._prefer(doctype, doc)

    def _delete(self, doctype: str, name: str) -> None:
        doc = self.store.remove(doctype, name)
        if doctype == "Customer":  # erpnext Customer.on_trash: delete_contact_and_address
            for kind in ("Address", "Contact"):
                for other in list(self.store.tables[kind].values()):
                    links = {(r["link_doctype"], r["link_name"]) for r in other.get("links")
                             or []}
                    if links == {("Customer", name)}:
                        self._delete(kind, other["name"])
        self._insert("Deleted Document", {"name": secrets.token_hex(5), "deleted_name": name,
                                          "deleted_doctype": doctype, "data": json.dumps(doc),
                                          "restored": 0})

    # -- control API ---------------------------------------------------------------------
    @staticmethod
    def doctype(stream: str) -> str:
        return STREAM_DOCTYPES.get(stream, stream)

    def count(self, stream: str) -> int:
        return len(self.store.tables[self.doctype(stream)])

    def touch(self, stream: str, n: int) -> list[str]:
        with self._lock:
            self.store.tick(60)
            docs = list(self.store.tables[self.doctype(stream)].values())[:n]
            for doc in docs:
                doc["modified"] = _stamp(self.store.clock)
            return [d["name"] for d in docs]

    def delete_records(self, stream: str, n: int) -> list[str]:
        with self._lock:
            self.store.tick(60)
            names = list(self.store.tables[self.doctype(stream)])[-n:]
            for name in names:
                self._delete(self.doctype(stream), name)
            return names

    def sample_rows(self, stream: str, n: int) -> list[dict[str, Any]]:
        with self._lock:
            start, self._new = self._new, self._new + n
        doctype = self.doctype(stream)
        if doctype == "Customer":
            return [{"custom_crm_id": f"CRM-{start + i + 1:06d}",
                     "customer_name": f"New Customer {start + i + 1} AG",
                     "customer_type": "Company", "customer_group": "Commercial",
                     "territory": "Germany"} for i in range(n)]
        if doctype == "Sales Order":
            customer = next(iter(self.store.tables["Customer"]))
            return [{"custom_crm_id": f"CRM-SO-{start + i + 1:06d}", "customer": customer,
                     "transaction_date": "2024-06-01", "delivery_date": "2024-06-15",
                     "currency": "EUR",
                     "items": [{"item_code": "TG11", "qty": 2, "rate": 19.9}]}
                    for i in range(n)]
        raise ValueError(f"{stream} is read-only in this emulator")

    def invalid_row(self, stream: str) -> dict[str, Any]:
        row = self.sample_rows(stream, 1)[0]
        row.pop("customer_name" if self.doctype(stream) == "Customer" else "customer")
        return row

    def exhaust_limit(self) -> None:
        self.quota_reset = 3600

    def expire_tokens(self) -> None:
        """API keys do not expire in Frappe; nothing to do (kept for EmulatorControl)."""

    def add_linked(self, doctype: str, doc: dict[str, Any], *,
                   owner: str = "sales@example.com") -> dict[str, Any]:
        """An Address or Contact an ERP user creates by hand (``owner`` is that user)."""
        with self._lock:
            self.store.tick(0.001)
            return self._insert(doctype, doc, owner=owner)

    def linked(self, doctype: str, link_doctype: str, link_name: str) -> list[dict[str, Any]]:
        """The ``doctype`` records (Address, Contact) linked to one document."""
        return [d for d in self.store.tables[doctype].values()
                if any(r["link_doctype"] == link_doctype and r["link_name"] == link_name
                       for r in d.get("links") or [])]

    def get(self, stream: str, name: str) -> dict[str, Any] | None:
        return self.store.tables[self.doctype(stream)].get(name)

    def find(self, stream: str, **fields: Any) -> list[dict[str, Any]]:
        return [d for d in self.store.tables[self.doctype(stream)].values()
                if all(d.get(k) == v for k, v in fields.items())]

    # -- WSGI ------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"].upper()
        path = unquote(environ.get("PATH_INFO", ""))
        query, body = query_fields(environ), read_body(environ)
        headers: dict[str, str] = {}
        truncate = False
        self.count_request()
        with self._lock:
            try:
                truncate = self.take_fault(f"{method} {path}", self._refusal)
                if environ.get("HTTP_AUTHORIZATION") != f"token {API_KEY}:{API_SECRET}":
                    raise FrappeError(401, "AuthenticationError", "Invalid API key or secret")
                if self.quota_reset is not None:
                    raise Reply(429, "Too Many Requests", {
                        "Retry-After": str(self.quota_reset), "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(self.quota_reset),
                        "X-RateLimit-Limit": "600000000"})
                status, payload = self._route(method, path, query, body)
            except Reply as answer:
                status, payload, headers = answer.status, answer.body, answer.headers
            except FrappeError as exc:
                status, payload = exc.status, exc.body()
        return respond(start_response, status, payload, headers, truncate=truncate,
                       text_type="text/html; charset=utf-8")

    def _refusal(self, kind: int, retry_after: int | None) -> Reply:
        if kind == 429:
            wait = self.retry_after_header(retry_after)
            return Reply(429, "Too Many Requests", {"Retry-After": wait,
                                                    "X-RateLimit-Reset": wait,
                                                    "X-RateLimit-Remaining": "0"})
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return Reply(kind, FrappeError(kind, "ServerError" if kind == 500 else
                                       "ServiceUnavailable", "Server error").body(), headers)

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes):
        if path == "/api/method/frappe.auth.get_logged_user":
            return 200, {"message": API_USER}
        parts = path.split("/")
        if len(parts) < 4 or parts[1:3] != ["api", "resource"]:
            raise FrappeError(404, "DoesNotExistError", f"Page {path} not found")
        doctype = parts[3]
        if doctype not in _SCHEMA:
            raise FrappeError(404, "DoesNotExistError", f"DocType {doctype} not found")
        name = "/".join(parts[4:]) or None
        self.store.tick(0.001)
        if name is None and method == "GET":
            return 200, {"data": self._list(doctype, query)}
        if name is None and method == "POST":
            return 200, {"data": self._insert(doctype, self._json(body), owner=API_USER)}
        doc = self.store.tables[doctype].get(name or "")
        if doc is None:
            raise FrappeError(404, "DoesNotExistError", f"{doctype} {name} not found")
        if method == "GET":
            return 200, {"data": doc}
        if method == "PUT":
            self._update(doctype, doc, self._json(body))
            return 200, {"data": doc}
        if method == "DELETE":
            if doc["docstatus"] == 1:
                raise FrappeError(417, "LinkExistsError", "Cannot delete a submitted document")
            for other in ("Sales Order", "Sales Invoice"):
                used = [n for n, d in self.store.tables[other].items() if d.get("customer") == name]
                if doctype == "Customer" and used:
                    raise FrappeError(417, "LinkExistsError", f"Cannot delete or cancel "
                                      f"because {doctype} {name} is linked with {other} "
                                      f"{used[0]}")
            self._delete(doctype, name or "")
            return 202, {"message": "ok"}
        raise FrappeError(405, "ValidationError", f"Method {method} not allowed")

    @staticmethod
    def _json(body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise FrappeError(417, "ValidationError", "Invalid JSON body") from None
        if isinstance(data, dict) and isinstance(data.get("data"), dict | str):
            data = data["data"] if isinstance(data["data"], dict) else json.loads(data["data"])
        if not isinstance(data, dict):
            raise FrappeError(417, "ValidationError", "Body must be a JSON object")
        return data

    def _list(self, doctype: str, query: dict[str, str]) -> list[dict[str, Any]]:
        try:
            fields = json.loads(query.get("fields") or '["name"]')
            filters = json.loads(query.get("filters") or "[]")
        except ValueError:
            raise FrappeError(417, "ValidationError", "fields and filters must be JSON") \
                from None
        if isinstance(filters, dict):
            filters = [[k, *(v if isinstance(v, list) else ["=", v])] for k, v in filters.items()]
        own = [f for f in filters if len(f) < 4 or f[0] == doctype]
        child = [f for f in filters if len(f) == 4 and f[0] != doctype]
        tables = [t for t, c in _SCHEMA[doctype][2].items() if child and c == child[0][0]]
        if child and (not tables or any(f[0] != child[0][0] for f in child)):
            raise FrappeError(417, "DataError", f"Field not permitted in query: {child[0][0]}")
        rows = [d for d in self.store.tables[doctype].values()
                if all(_match(d, f[-3:]) for f in own)
                and (not child or any(all(_match(r, f[-3:]) for f in child)
                                      for r in d.get(tables[0]) or []))]
        for item in reversed([o.strip() for o in (query.get("order_by") or
                                                  "modified desc").split(",")]):
            field, _, direction = item.partition(" ")
            field = field.strip("`").split(".")[-1]
            rows.sort(key=lambda d, f=field: (d.get(f) is not None, str(d.get(f) or "")),
                      reverse=direction.strip().lower() == "desc")
        start = int(query.get("limit_start") or 0)
        size = int(query.get("limit_page_length") or query.get("limit") or 20)
        page = rows[start:start + size] if size else rows[start:]
        children = _SCHEMA[doctype][2]
        if fields == ["*"]:
            return [{k: v for k, v in d.items() if k not in children} for d in page]
        return [{f: d.get(f) for f in fields} for d in page]


def _match(doc: dict[str, Any], cond: list[Any]) -> bool:
    field, op, value = cond
    have = doc.get(field)
    if op in ("in", "not in"):
        values = value if isinstance(value, list) else str(value).split(",")
        return (have in values) == (op == "in")
    if op == "is":   # ["field", "is", "set"] / "not set"
        return (have not in (None, "")) == (value == "set")
    if op == "like":
        needle = str(value).strip("%").lower()
        return needle in str(have or "").lower()
    if have is None:
        return op == "!=" and value is not None
    have, value = (str(have), str(value)) if isinstance(have, str) else (have, value)
    try:
        return {"=": have == value, "!=": have != value, ">": have > value,
                ">=": have >= value, "<": have < value, "<=": have <= value}[op]
    except (KeyError, TypeError):
        raise FrappeError(417, "ValidationError", f"Invalid filter {cond!r}") from None


def make_app(seed: int = 42, **options: Any) -> ErpNextEmulator:
    return ErpNextEmulator(seed=seed, **options)


def main(argv: list[str] | None = None) -> int:
    """Run the emulator on a port until interrupted."""
    return run_emulator(argv, "crm2erp.emulators.erpnext.app",
                        "Run the ERPNext (Frappe REST) emulator.", 8703, make_app,
                        "ERPNext emulator on {url} "
                        f"(Authorization: token {API_KEY}:{API_SECRET})",
                        {"customers": (count, 120)})


if __name__ == "__main__":
    raise SystemExit(main())

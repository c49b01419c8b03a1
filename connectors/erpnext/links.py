"""A record's addresses and contact in ERPNext: ``Address`` and ``Contact`` documents.

ERPNext keeps a customer's addresses and people in their own DocTypes, linked
to the customer through their ``links`` child table (``Dynamic Link``:
``link_doctype`` + ``link_name``). The integration owns the records it created
(``owner`` is the API user, from ``frappe.auth.get_logged_user``): one Address
per configured address type and one Contact per record. Records ERP users
created are never changed or removed.

On every write of the record:

* an address row field (``billing_address``) updates the integration's Address
  of its type in place, or creates it; it becomes the preferred one
  (``is_primary_address`` for Billing, ``is_shipping_address`` for Shipping -
  Frappe clears the flag on the others). An empty value deletes the
  integration's Address of that type. A ``country`` given as an ISO code (``DE``)
  becomes the Country's name (Country ``code``).
* the contact row field (``contact``: ``email_id``, ``phone``, ``mobile_no`` and
  other Contact fields) goes to the integration's Contact (``is_primary_contact``).
  Its e-mail and numbers are the primary rows of ``email_ids`` (``is_primary``)
  and ``phone_nos`` (``is_primary_phone``, ``is_primary_mobile_no``). The
  integration's values are the primary rows, so a primary row whose value is no
  longer sent is removed; rows without a primary flag (added by ERP users) are
  kept. A Contact left with no e-mail and no number is deleted.
* a second integration-owned record of the same kind (a create whose answer was
  lost and that was sent again) is deleted, so each converges to one.
"""

from __future__ import annotations

__all__ = ["LinkedRecords", "LinkError", "contact_rows"]

import re
from collections.abc import Callable
from functools import cached_property
from typing import Any

import requests

from crm2erp.connectors.base import Row
from crm2erp.connectors.erpnext.api import frappe_error
from crm2erp.connectors.erpnext.config import ErpNextStreamConfig
from crm2erp.connectors.erpnext.source import ErpNextReader, resource
from crm2erp.connectors.toolkit.fields import record_value
from crm2erp.connectors.toolkit.values import changed_fields

Send = Callable[[str, str, dict | None], requests.Response]
_PREFERRED = {"Billing": "is_primary_address", "Shipping": "is_shipping_address"}
_ISO = re.compile(r"^[A-Za-z]{2}$")
_PHONE_FLAGS = ("is_primary_phone", "is_primary_mobile_no")
_TABLES = ("email_ids", "phone_nos")


class LinkError(Exception):
    """Frappe refused an Address or Contact write; the message says which and why."""


def contact_rows(current: dict, email: str | None, phone: str | None,
                 mobile: str | None) -> tuple[list[dict], list[dict]]:
    """The ``email_ids`` and ``phone_nos`` rows a Contact should have: the values sent
    as the primary rows, then the rows without a primary flag (ERP users'), in order;
    primary rows no longer sent are gone, and a user's row with a value now sent
    becomes that primary row rather than a twin."""
    emails = [r for r in current.get("email_ids") or []
              if not r.get("is_primary") and r.get("email_id") != email]
    numbers = [r for r in current.get("phone_nos") or []
               if not any(r.get(f) for f in _PHONE_FLAGS) and r.get("phone") not in
               (phone, mobile)]
    if email:
        emails.insert(0, {"email_id": email, "is_primary": 1})
    if phone and phone == mobile:   # one row with both flags
        numbers.insert(0, {"phone": phone, **{f: 1 for f in _PHONE_FLAGS}})
        return emails, numbers
    for value, flag in ((mobile, "is_primary_mobile_no"), (phone, "is_primary_phone")):
        if value:
            numbers.insert(0, {"phone": value, **{f: int(f == flag) for f in _PHONE_FLAGS}})
    return emails, numbers


class LinkedRecords:
    """The integration's Address and Contact documents of the records a writer writes."""

    def __init__(self, reader: ErpNextReader, send: Send, same: Callable[[Any, Any], bool]):
        self.reader, self.send, self.same = reader, send, same
        self._countries: dict[str, str] = {}

    @cached_property
    def user(self) -> str:
        """The API user: the ``owner`` of every record the integration created."""
        return str(self.reader.client.get_json(
            "/api/method/frappe.auth.get_logged_user")["message"])

    def write(self, stream: ErpNextStreamConfig, name: str, row: Row, partial: bool) -> bool:
        """The contact and addresses of ``stream``'s record ``name``: each one ``row``
        carries (every one unless ``partial``); true when one changed."""
        parent = (stream.doctype, name)
        changed = False
        for field, address_type in stream.addresses.items():
            if field in row or not partial:
                changed |= self.address(parent, address_type, row.get(field))
        if stream.contact and (stream.contact in row or not partial):
            changed |= self.contact(parent, row.get(stream.contact))
        return changed

    # -- reading -------------------------------------------------------------
    def _ours(self, doctype: str, parent: tuple[str, str], **fields: Any) -> list[dict]:
        """The integration's ``doctype`` records linked to ``parent``, oldest first."""
        filters = [["Dynamic Link", "link_doctype", "=", parent[0]],
                   ["Dynamic Link", "link_name", "=", parent[1]],
                   [doctype, "owner", "=", self.user],
                   *([doctype, k, "=", v] for k, v in fields.items())]
        listed = self.reader.list(doctype, ["name"], filters, "creation asc, name asc")
        return list(self.reader.documents(doctype, listed))

    def _country(self, value: Any) -> Any:
        if not isinstance(value, str) or not _ISO.match(value):
            return value
        code = value.lower()
        if code not in self._countries:
            found = list(self.reader.list("Country", ["name"], [["code", "=", code]],
                                          "name asc"))
            if not found:
                raise LinkError(f"no Country with code {value!r}; fix the address's country")
            self._countries[code] = str(found[0]["name"])
        return self._countries[code]

    # -- writing ---------------------------------------------------------------
    def _call(self, method: str, doctype: str, name: str | None, body: dict | None) -> None:
        resp = self.send(method, resource(doctype, name), body)
        if resp.status_code == 404 and method == "DELETE":
            return   # already gone
        if resp.status_code >= 400:
            raise LinkError(f"{doctype}{' ' + name if name else ''}: "
                            f"{frappe_error(resp.status_code, resp.content)}")

    def _delete(self, doctype: str, docs: list[dict]) -> None:
        for doc in docs:
            self._call("DELETE", doctype, str(doc["name"]), None)

    def _converge(self, doctype: str, parent: tuple[str, str], desired: dict | None,
                  docs: list[dict] | None = None, **fields: Any) -> bool:
        """Make the integration's records of this kind one with ``desired`` (none when
        ``desired`` is None); true when that took a change. ``email_ids`` and
        ``phone_nos`` are compared row by row and sent whole."""
        docs = self._ours(doctype, parent, **fields) if docs is None else docs
        keep = docs[0] if docs and desired is not None else None
        self._delete(doctype, docs[1 if keep else 0:])
        if desired is None:
            return bool(docs)
        if keep is None:
            link = {"link_doctype": parent[0], "link_name": parent[1]}
            retries = self.reader.client.stats.retries
            self._call("POST", doctype, None, {**desired, "links": [link]})
            if self.reader.client.stats.retries != retries:   # an answer was lost: a twin?
                self._delete(doctype, self._ours(doctype, parent, **fields)[1:])
            return True
        # links are kept as they are: users may add more
        update = changed_fields(keep, desired, tables=_TABLES, same=self.same)
        if update:
            self._call("PUT", doctype, str(keep["name"]), update)
        return bool(update) or len(docs) > 1

    def address(self, parent: tuple[str, str], address_type: str, values: Any) -> bool:
        """Write one address of ``parent``; true when something changed."""
        wanted = record_value(values, f"Address ({address_type})", error=LinkError)
        desired = None
        if wanted:
            if "country" in wanted:
                wanted["country"] = self._country(wanted["country"])
            desired = {"address_title": parent[1], **wanted, "address_type": address_type}
            if address_type in _PREFERRED:
                desired[_PREFERRED[address_type]] = 1
        return self._converge("Address", parent, desired, address_type=address_type)

    def contact(self, parent: tuple[str, str], values: Any) -> bool:
        """Write the contact of ``parent``; true when something changed. It has an e-mail
        or number row whenever one is sent, so none left means no Contact."""
        wanted = record_value(values, "Contact", error=LinkError)
        email = wanted.pop("email_id", None)
        phone, mobile = wanted.pop("phone", None), wanted.pop("mobile_no", None)
        docs = self._ours("Contact", parent)
        emails, numbers = contact_rows(docs[0] if docs else {}, email, phone, mobile)
        desired = {"first_name": parent[1], **wanted, "is_primary_contact": 1,
                   "email_ids": emails, "phone_nos": numbers} if emails or numbers else None
        return self._converge("Contact", parent, desired, docs)

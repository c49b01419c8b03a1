"""Parties: read back with their children, and upserted so the CRM's values come first.

A party's contact mechanisms, addresses and relations are children Tryton
orders by ``sequence``: ``party.phone`` is the first phone, the invoice
address the first address flagged ``invoice``. An upsert therefore

* matches each value the row carries with one the party has (phones in
  E.164 the way Tryton compares them, e-mails case-blind, addresses on
  street, postal code, city and country), reactivating an archived match,
  and creates the others;
* puts them first, in the row's order (``sequence`` 1, 2, ...), the party's
  other active values after them in their current order;
* retires the values it no longer sends, as the replace mode says
  (``party.replace_contact_mechanisms`` in the connection, or the row's
  ``replace_contact_mechanisms`` field, which its outbound mapping can set):

  ``owned`` (default) archives (``active = False``) the ones the integration's
  Tryton user created and keeps the ones ERP users added; ``all`` archives
  every value not sent; ``add`` only adds what is missing and leaves order
  and old values alone (the behaviour before 0.2).

Addresses and contact mechanisms are archived, never deleted (an invoice may
point at the address). Relations (``relation_to``/``relation_type``, module
``party_relationship``: a contact who works for a company) have no archive:
a relation of the same type to another party is deleted under the same rule.

Duplicate parties are merged with Tryton's ``party.replace`` wizard
(:meth:`PartyWriter.merge`).
"""

from __future__ import annotations

__all__ = ["PartyWriter", "party_children", "party_rows", "REPLACE_MODES", "phone_e164"]

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import phonenumbers

from crm2erp.connectors.base import Row, WriteAction, WriteResult
from crm2erp.connectors.toolkit.batches import chunks
from crm2erp.connectors.toolkit.records import as_id
from crm2erp.connectors.toolkit.sequenced import Child, plan_children
from crm2erp.connectors.tryton.client import TrytonClient, TrytonUserError
from crm2erp.connectors.tryton.common import NOT_ACTIVE, search_in
from crm2erp.connectors.tryton.rows import (
    ADDRESS_FIELDS,
    PARTY_FIELDS,
    address_vals,
    compact,
    party_row,
    wanted_addresses,
    wanted_contacts,
)
from crm2erp.connectors.tryton.writer import KeyedWriter

log = logging.getLogger(__name__)
REPLACE_MODES = ("owned", "all", "add")
#: party.replace asks at most this many questions (name, tax identifier)
MAX_WARNINGS = 2
PHONE_TYPES = ("phone", "mobile", "fax")
CONTACT_FIELDS = ("party", "type", "value", "value_compact", "sequence", "active", "create_uid")
CHILD_ADDRESS_FIELDS = (*ADDRESS_FIELDS, "party", "sequence", "create_uid")
RELATION_FIELDS = ("from_", "to", "type", "type.name", "create_uid")
_CHILDREN = (("contacts", "party.contact_mechanism", "party", CONTACT_FIELDS),
             ("addresses", "party.address", "party", CHILD_ADDRESS_FIELDS),
             ("relations", "party.relation.all", "from_", RELATION_FIELDS))
_NO_CHILDREN: dict[str, list] = {kind: [] for kind, *_ in _CHILDREN}


def phone_e164(value: str, regions: Iterable[str | None] = ()) -> str | None:
    """E.164 of a phone number read as Tryton reads it (each region in turn, then none)."""
    for region in [*regions, None]:
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def _contact_sig(kind: str, value: str, regions: Sequence[str | None]) -> tuple[str, str]:
    if kind in PHONE_TYPES:
        return kind, phone_e164(value, regions) or compact(value)
    return kind, compact(value)


def _address_sig(addr: Mapping[str, Any]) -> tuple:
    street = addr.get("street_unstructured", addr.get("street"))
    return tuple(re.sub(r"\s+", " ", str(v or "")).strip().casefold()
                 for v in (street, addr.get("postal_code"), addr.get("city"))) + (
        addr.get("country"),)


def party_children(client: TrytonClient, party_ids: Sequence[int]) -> dict[int, dict]:
    """Party id -> ``{"contacts", "addresses", "relations"}``: every child (archived ones
    too), each list in Tryton's order (sequence, then id)."""
    out: dict[int, dict] = {pid: {kind: [] for kind, *_ in _CHILDREN} for pid in party_ids}
    children = [c for c in _CHILDREN if c[0] != "relations"
                or client.has_model("party.relation.all")]   # module party_relationship
    for part in chunks(sorted(set(party_ids)), 500):
        for kind, model, field, fields in children:
            for rec in client.search_read(model, [(field, "in", list(part))], fields,
                                          context=NOT_ACTIVE):
                out[rec[field]][kind].append(rec)
    return out


def party_rows(client: TrytonClient, parties: Sequence[dict], key_field: str) -> list[dict]:
    """Rows of ``parties`` (read with PARTY_FIELDS) with their active children."""
    kids = party_children(client, [p["id"] for p in parties])
    return [party_row(p, [a for a in kids[p["id"]]["addresses"] if a.get("active", True)],
                      [c for c in kids[p["id"]]["contacts"] if c.get("active", True)],
                      key_field, kids[p["id"]]["relations"]) for p in parties]


class PartyWriter(KeyedWriter):
    """Upserts the ``parties`` stream (see the module docstring for the rules)."""

    stream, model, written = "parties", "party.party", "party.party"
    what, fields = "party", PARTY_FIELDS

    @property
    def key_field(self) -> str:
        return self.config.party.key_field

    def mode(self, row: Row) -> str:
        mode = row.get("replace_contact_mechanisms") or self.config.party.replace_contact_mechanisms
        if mode not in REPLACE_MODES:
            raise ValueError(f"replace_contact_mechanisms {mode!r} is not one of "
                             f"{', '.join(REPLACE_MODES)}")
        return mode

    def prepare(self, rows: Sequence[Row], existing: dict[str, dict]) -> None:
        self.countries = self.lookups.ids("country.country", "code", [
            str(a.get("country") or "").strip().upper()
            for r in rows for a in wanted_addresses(r)])
        wanted_types = [str(r.get("relation_type") or "") for r in rows]
        self.types = self.lookups.ids("party.relation.type", "name", wanted_types) \
            if any(wanted_types) and self.client.has_model("party.relation.type") else {}
        self.kids = party_children(self.client, [p["id"] for p in existing.values()])

    def values(self, row: Row, key: str, current: dict | None) -> dict[str, Any]:
        if not str(row.get("name") or "").strip():
            raise ValueError("has no name")
        mode = self.mode(row)
        addresses = [address_vals(a, self.countries) for a in wanted_addresses(row)]
        relation_type, relations = _wanted_relations(row, self.types)
        regions = [_region(a) for a in wanted_addresses(row)]
        header = {"name": str(row["name"]).strip()}
        if "active" in row and row["active"] is not None:
            header["active"] = bool(row["active"])
        if current is None:
            vals, have = {self.key_field: key, **header}, _NO_CHILDREN
            mode = "all"   # every child is new: created in the row's order
        else:
            vals = {k: v for k, v in header.items() if current.get(k) != v}
            have = self.kids[current["id"]]
        uid = self.client.auth.user_id
        contacts = [(_contact_sig(t, v, regions), {"type": t, "value": v})
                    for t, v in wanted_contacts(row)]
        ops = {"contact_mechanisms": _children_ops(
            [(_contact_sig(c["type"], c["value_compact"] or c["value"], regions), c)
             for c in have["contacts"]], contacts, mode, uid),
            "addresses": _children_ops([(_address_sig(a), a) for a in have["addresses"]],
                                       [(_address_sig(a), a) for a in addresses], mode, uid)}
        if relation_type is not None:
            ops["relations"] = _relation_ops(have["relations"], relation_type, relations,
                                             mode, uid)
        return {**vals, **{name: op for name, op in ops.items() if op}}

    def merge(self, loser_id: str, survivor_id: str) -> WriteResult:
        """Replace party ``loser_id`` by ``survivor_id``; FAILED with the reason when refused.

        Tryton's own ``party.replace`` wizard (module ``party``) repoints every Many2One
        to the source party that the activated modules register (sales, invoices,
        addresses, contact mechanisms...) to the destination, archives the source and its
        addresses and contact mechanisms, and sets the source's ``replaced_by``. It asks
        twice before it does so, with UserWarnings: the two parties have different names,
        or different tax identifiers. A steward who accepted the pair has answered both;
        each warning is acknowledged once (a ``res.user.warning``, as the Tryton client
        does) and named in the result's note.
        """
        source, destination = as_id(loser_id), as_id(survivor_id)
        if source is None or destination is None or source == destination:
            return WriteResult(loser_id, WriteAction.FAILED, error=(
                f"cannot replace party {loser_id!r} by {survivor_id!r}: two different Tryton "
                "party ids are needed"))
        found = {p["id"]: p for p in search_in(self.client, "party.party", "id",
                                               [source, destination],
                                               ["active", "replaced_by"], NOT_ACTIVE)}
        missing = [str(i) for i in (source, destination) if i not in found]
        if missing:
            return WriteResult(loser_id, WriteAction.FAILED, error=(
                f"no party.party with id {', '.join(missing)} in Tryton (deleted by hand?); "
                "nothing was replaced"))
        if found[source]["replaced_by"] == destination:
            return WriteResult(loser_id, WriteAction.UNCHANGED, loser_id)
        data = {"ask": {"source": source, "destination": destination}}
        context = {"active_model": "party.party", "active_id": source, "active_ids": [source]}
        answered: list[str] = []
        while True:
            try:
                self.client.wizard("party.replace", "replace", data, context=context)
                break
            except TrytonUserError as exc:
                if exc.kind != "UserWarning" or not exc.name or len(answered) >= MAX_WARNINGS:
                    return WriteResult(loser_id, WriteAction.FAILED, error=(
                        f"Tryton's party.replace of party {source} by {destination} failed: "
                        f"{exc}"))
                log.info("party.replace %s -> %s: %s; accepted by the steward's decision",
                         source, destination, exc)
                answered.append(str(exc).removeprefix("Tryton refused (UserWarning): "))
                self.client.skip_warning(exc.name)
        note = f"acknowledged: {'; '.join(answered)}" if answered else None
        return WriteResult(loser_id, WriteAction.UPDATED, loser_id, error=note)


def _region(addr: Mapping[str, Any]) -> str | None:
    code = str(addr.get("country") or "").strip().upper()
    return code or None


def _wanted_relations(row: Row, types: Mapping[str, int]) -> tuple[int | None, list[dict]]:
    """``(relation type id, [relation vals])``; type None when the row manages no relation."""
    if "relation_type" not in row:
        return None, []
    name = str(row.get("relation_type") or "").strip()
    if name not in types:
        raise ValueError(f"relation type {name!r} is not in Tryton; activate the module "
                         "party_relationship and create the type (Party > Configuration > "
                         "Relation Types), or fix relation_type in the outbound mapping")
    target = row.get("relation_to")
    if target in (None, ""):
        return types[name], []
    if as_id(target) is None:
        raise ValueError(f"relation_to {target!r} is not a Tryton party id")
    return types[name], [{"to": as_id(target), "type": types[name]}]


def _retire(child: Mapping[str, Any], mode: str, uid: int | None) -> bool:
    return mode == "all" or (mode == "owned" and uid is not None and child["create_uid"] == uid)


def _children_ops(current: list[Child], wanted: list[Child], mode: str,
                  uid: int | None) -> list[list]:
    """One2Many operations that make ``wanted`` the first active children (see module doc)."""
    plan = plan_children(current, wanted, compare=("invoice", "delivery"),
                         reorder=mode != "add", retire=lambda child: _retire(child, mode, uid))
    ops: list[list] = [["create", plan.creates]] if plan.creates else []
    return ops + [["write", [cid], change] for cid, change in plan.writes.items()]


def _relation_ops(current: list[dict], type_id: int, wanted: list[dict], mode: str,
                  uid: int | None) -> list[list]:
    """Create the wanted relation if missing; delete others of its type as the mode says."""
    have = {(c["type"], c["to"]) for c in current}
    ops: list[list] = []
    missing = [w for w in wanted if (w["type"], w["to"]) not in have]
    if missing:
        ops.append(["create", missing])
    if mode != "add":
        keep = {(w["type"], w["to"]) for w in wanted}
        gone = [c["id"] for c in current if c["type"] == type_id
                and (c["type"], c["to"]) not in keep and _retire(c, mode, uid)]
        if gone:
            ops.append(["delete", gone])
    return ops

"""The HubSpot emulator's in-memory portal: object schemas, seed data and write rules.

Records keep Python values (``datetime`` for datetimes) in the kernel's record
store, whose logical clock gives the modification stamps; the WSGI layer
renders them as HubSpot does: every property value a string, datetimes as
ISO-8601 with milliseconds. Ids are fixed-width numbers per object type, like
real portals' ids.
"""

from __future__ import annotations

__all__ = ["OPTIONS", "SCHEMA", "UNIQUE", "READ_ONLY", "Portal", "cursor_property", "PropertyError"]

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from crm2erp.emulators.kernel.store import RecordStore

OPTIONS = {
    "industry": ["COMPUTER_SOFTWARE", "MACHINERY", "RETAIL", "LOGISTICS_AND_SUPPLY_CHAIN",
                 "FOOD_BEVERAGES", "RENEWABLES_ENVIRONMENT"],
    "dealstage": ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
                  "decisionmakerboughtin", "contractsent", "closedwon", "closedlost"],
    "pipeline": ["default"],
    "deal_currency_code": ["EUR", "USD", "GBP"],
    "hs_recurring_billing_period": ["P1M", "P12M"],
}
_COMMON = {"hs_object_id": "number", "createdate": "datetime", "erp_id": "string"}
SCHEMA: dict[str, dict[str, str]] = {
    "companies": {"name": "string", "domain": "string", "phone": "string",
                  "industry": "enumeration", "address": "string", "city": "string",
                  "zip": "string", "country": "string", "annualrevenue": "number",
                  "numberofemployees": "number", "hs_lastmodifieddate": "datetime"},
    "contacts": {"firstname": "string", "lastname": "string", "email": "string",
                 "phone": "string", "jobtitle": "string", "associatedcompanyid": "number",
                 "lastmodifieddate": "datetime"},
    "deals": {"dealname": "string", "dealstage": "enumeration", "pipeline": "enumeration",
              "amount": "number", "closedate": "datetime", "deal_currency_code": "enumeration",
              "hs_deal_stage_probability": "number", "hs_lastmodifieddate": "datetime"},
    "line_items": {"name": "string", "hs_product_id": "number", "hs_sku": "string",
                   "quantity": "number", "price": "number", "amount": "number",
                   "discount": "number", "hs_lastmodifieddate": "datetime"},
    "products": {"name": "string", "hs_sku": "string", "description": "string",
                 "price": "number", "hs_recurring_billing_period": "enumeration",
                 "hs_lastmodifieddate": "datetime"},
}
for _props in SCHEMA.values():
    _props.update(_COMMON)
UNIQUE = {"erp_id", "hs_object_id"}  # contacts may also upsert on email
READ_ONLY = {"hs_object_id", "createdate", "hs_lastmodifieddate", "lastmodifieddate"}
_ID_BASE = {"companies": 10_000_000_000, "contacts": 20_000_000_000, "deals": 30_000_000_000,
            "line_items": 40_000_000_000, "products": 50_000_000_000}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.I)
_WORDS = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Hooli", "Vandelay", "Tyrell",
          "Cyberdyne", "Wonka", "Aperture", "Nakatomi", "Soylent", "Massive"]
_KINDS = ["Industries", "Logistics", "Systems", "Foods", "Labs", "Partners", "GmbH", "Ltd"]
# valid numbers once three digits are appended (phone validation downstream is strict)
_CITIES = [("Berlin", "Germany", "+49 30 55501"), ("Lyon", "France", "+33 4 72 55 5"),
           ("Austin", "United States", "+1 512 555 0"),
           ("Leeds", "United Kingdom", "+44 113 496 0"), ("Porto", "Portugal", "+351 22 555 0")]
_FIRST = ["Anna", "Ben", "Chloe", "David", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas"]
_LAST = ["Schmidt", "Martin", "Garcia", "Rossi", "Novak", "Jensen", "Kowalski", "Silva"]


def cursor_property(object_type: str) -> str:
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


class PropertyError(ValueError):
    """A property value HubSpot refuses: ``code`` is HubSpot's error code."""

    def __init__(self, name: str, code: str, message: str):
        super().__init__(message)
        self.name, self.code = name, code


class Portal(RecordStore):
    """All object tables and associations of one emulated portal (thread-safe)."""

    def __init__(self, *, seed: int = 42, companies: int = 100, contacts_per_company: int = 2,
                 deals_per_company: int = 1, line_items_per_deal: int = 2, products: int = 20,
                 same_stamp: int = 7, start: dt.datetime = dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                 product_skus: list[str] | None = None):
        super().__init__(SCHEMA, seed=seed, start=start, same_stamp=same_stamp)
        self.links: dict[tuple[str, str], dict[str, set[str]]] = {}
        self.product_skus = list(product_skus or [])
        self._seed(companies, contacts_per_company, deals_per_company, line_items_per_deal,
                   products)
        self.end_seed()

    # -- seeding ---------------------------------------------------------
    def add(self, kind: str, props: dict[str, Any], stamp: dt.datetime) -> dict[str, Any]:
        rid = str(_ID_BASE[kind] + self.next_number(kind))
        values = dict.fromkeys(SCHEMA[kind])
        values.update(props, hs_object_id=int(rid), createdate=stamp)
        values[cursor_property(kind)] = stamp
        record = {"id": rid, "properties": values, "createdAt": stamp, "updatedAt": stamp,
                  "archived": False, "archivedAt": None}
        return self.put(kind, rid, record)

    def link(self, a: str, a_id: str, b: str, b_id: str) -> None:
        self.links.setdefault((a, b), {}).setdefault(a_id, set()).add(b_id)
        self.links.setdefault((b, a), {}).setdefault(b_id, set()).add(a_id)

    def _seed(self, companies, contacts_per, deals_per, lines_per, products) -> None:
        r = self.rng
        catalogue = []
        skus = self.product_skus or [f"SKU-{i + 1:04d}" for i in range(products)]
        for i, sku in enumerate(skus):
            catalogue.append(self.add("products", {
                "name": f"{r.choice(_WORDS)} Widget {i + 1}", "hs_sku": sku,
                "price": Decimal(r.randint(5, 900)), "description": "Seeded product",
                "hs_recurring_billing_period": None}, self.seed_stamp("products")))
        for i in range(companies):
            city, country, phone = r.choice(_CITIES)
            name = f"{r.choice(_WORDS)} {r.choice(_KINDS)} {i + 1}"
            company = self.add("companies", {
                "name": name, "domain": f"{name.split()[0].lower()}{i + 1}.example",
                "phone": f"{phone}{r.randint(100, 999)}",
                "industry": r.choice(OPTIONS["industry"]),
                "address": f"{r.randint(1, 200)} Main Street", "city": city,
                "zip": str(r.randint(10000, 99999)), "country": country,
                "annualrevenue": Decimal(r.randint(1, 500) * 10000),
                "numberofemployees": r.randint(5, 5000)}, self.seed_stamp("companies"))
            for j in range(contacts_per):
                first, last = r.choice(_FIRST), r.choice(_LAST)
                contact = self.add("contacts", {
                    "firstname": first, "lastname": last,
                    "email": f"{first}.{last}.{i + 1}.{j}@example.com".lower(),
                    "phone": company["properties"]["phone"], "jobtitle": r.choice(
                        ["Buyer", "CFO", "Ops Lead"]), "associatedcompanyid": int(company["id"])},
                    self.seed_stamp("contacts"))
                self.link("contacts", contact["id"], "companies", company["id"])
            for j in range(deals_per):
                deal = self.add("deals", {
                    "dealname": f"{name} - deal {j + 1}", "pipeline": "default",
                    "dealstage": r.choice(OPTIONS["dealstage"]), "deal_currency_code": "EUR",
                    "hs_deal_stage_probability": Decimal("0.5"),
                    "closedate": self.start + dt.timedelta(days=r.randint(0, 365))},
                    self.seed_stamp("deals"))
                self.link("deals", deal["id"], "companies", company["id"])
                total = Decimal(0)
                for _ in range(lines_per):
                    product = r.choice(catalogue)["properties"] if catalogue else {}
                    qty, price = Decimal(r.randint(1, 20)), product.get("price") or Decimal(10)
                    total += qty * price
                    line = self.add("line_items", {
                        "name": product.get("name", "Service"), "quantity": qty, "price": price,
                        "hs_product_id": product.get("hs_object_id"), "discount": Decimal(0),
                        "hs_sku": product.get("hs_sku"), "amount": qty * price},
                        self.seed_stamp("line_items"))
                    self.link("deals", deal["id"], "line_items", line["id"])
                deal["properties"]["amount"] = total

    # -- reading ---------------------------------------------------------
    def records(self, kind: str, *, archived: bool = False) -> list[dict[str, Any]]:
        return self.select(kind, lambda r: r["archived"] == archived)

    def associated(self, a: str, b: str, a_id: str) -> list[str]:
        with self.lock:
            live = self.tables.get(b, {})
            return sorted(i for i in self.links.get((a, b), {}).get(a_id, set())
                          if i in live and not live[i]["archived"])

    # -- changing --------------------------------------------------------
    def touch(self, kind: str, n: int) -> list[str]:
        with self.lock:
            chosen = self.pick(kind, n, lambda r: not r["archived"])
            now = self.tick()
            for rec in chosen:
                if "phone" in rec["properties"]:
                    rec["properties"]["phone"] = f"+1 512 555 0{self.rng.randint(100, 999)}"
                self._modified(kind, rec, now)
            return [r["id"] for r in chosen]

    def archive(self, kind: str, n: int) -> list[str]:
        with self.lock:
            chosen = self.pick(kind, n, lambda r: not r["archived"])
            now = self.tick()
            for rec in chosen:
                rec["archived"], rec["archivedAt"] = True, now
            return [r["id"] for r in chosen]

    def archive_ids(self, kind: str, ids: list[str]) -> None:
        """Archive these records (ids not found, or archived already, are passed over)."""
        with self.lock:
            now = self.tick()
            for record_id in ids:
                rec = self.tables[kind].get(record_id)
                if rec is not None and not rec["archived"]:
                    rec["archived"], rec["archivedAt"] = True, now

    @staticmethod
    def _modified(kind: str, record: dict[str, Any], now: dt.datetime) -> None:
        record["properties"][cursor_property(kind)] = now
        record["updatedAt"] = now

    def find(self, kind: str, prop: str, value: Any) -> dict[str, Any] | None:
        with self.lock:
            wanted = str(value).lower() if prop == "email" else str(value)
            for rec in self.records(kind):
                have = rec["properties"].get(prop)
                if have is not None and (str(have).lower() if prop == "email"
                                         else str(have)) == wanted:
                    return rec
            return None

    def coerce(self, kind: str, name: str, value: Any) -> Any:
        """A wire value (string) as the stored Python value; PropertyError if refused."""
        kinds = SCHEMA[kind]
        if name not in kinds:
            raise PropertyError(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
        if name in READ_ONLY:
            raise PropertyError(name, "READ_ONLY_VALUE", f'"{name}" is a read only property')
        if value in (None, ""):
            return None
        text = str(value)
        if kinds[name] == "number":
            try:
                return Decimal(text)
            except InvalidOperation:
                raise PropertyError(name, "INVALID_FLOAT",
                                    f"{text!r} was not a valid number") from None
        if kinds[name] == "datetime":
            try:
                if text.isdigit():
                    return dt.datetime.fromtimestamp(int(text) / 1000, tz=dt.UTC)
                return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise PropertyError(name, "INVALID_DATE",
                                    f"{text!r} is not a valid date") from None
        if kinds[name] == "enumeration" and text not in OPTIONS.get(name, [text]):
            raise PropertyError(name, "INVALID_OPTION", f'{text} was not one of the allowed '
                                f'options: [{", ".join(OPTIONS[name])}]')
        if name == "email" and not _EMAIL.match(text):
            raise PropertyError(name, "INVALID_EMAIL", f"Email address {text} is invalid")
        return text

    def update(self, kind: str, record_id: str, props: dict[str, Any]) -> dict[str, Any] | None:
        """Change properties of the live record ``record_id``; None when there is none.

        Raises PropertyError for a refused value, or a unique value another
        record already has.
        """
        with self.lock:
            record = self.tables[kind].get(str(record_id))
            if record is None or record["archived"]:
                return None
            values = {k: self.coerce(kind, k, v) for k, v in props.items()}
            for name in UNIQUE & set(values):
                other = self.find(kind, name, values[name]) if values[name] is not None else None
                if other is not None and other["id"] != record["id"]:
                    raise PropertyError(name, "CONFLICTING_UNIQUE_VALUE",
                                        f"{values[name]} already has that value for the "
                                        f"unique property {name} on record {other['id']}")
            record["properties"].update(values)
            self._modified(kind, record, self.tick())
            return record

    def upsert(self, kind: str, id_prop: str, id_value: Any,
               props: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create or update by ``id_prop``; returns ``(record, created)``. Raises PropertyError."""
        with self.lock:
            values = {k: self.coerce(kind, k, v) for k, v in props.items()}
            values[id_prop] = self.coerce(kind, id_prop, id_value) \
                if id_prop != "hs_object_id" else values.get(id_prop)
            existing = self.find(kind, id_prop, id_value)
            now = self.tick()
            if existing is None:
                if id_prop == "hs_object_id":
                    raise PropertyError(id_prop, "OBJECT_NOT_FOUND",
                                        f"No {kind} with hs_object_id {id_value}")
                return self.add(kind, values, now), True
            existing["properties"].update(values)
            self._modified(kind, existing, now)
            return existing, False

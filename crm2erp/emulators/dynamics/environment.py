"""The Dataverse emulator's in-memory environment: tables, seed data, write rules.

Records keep Python values (``datetime`` with whole seconds, ``Decimal``
money, ``date`` for date-only columns, GUID text); the WSGI layer renders
them as Web API JSON. ``modifiedon`` comes from the kernel record store's
logical clock, ``versionnumber`` from its counters. Deletions are written to an
``audits`` table (operation 3), as Dataverse does when auditing is on for the table.
"""

from __future__ import annotations

__all__ = ["Table", "TABLES", "Environment", "WriteError", "guid_sort_key"]

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from crm2erp.emulators.dynamics.odata import ODataError, parse_key
from crm2erp.emulators.kernel.store import RecordStore

_FIRST_VERSION = 1001   # versionnumber (rowversion) of the first row
_SYSTEM = {"createdon": "datetime", "modifiedon": "datetime", "versionnumber": "int"}


@dataclass(frozen=True)
class Table:
    logical: str
    key: str
    columns: dict[str, str]
    alternate_keys: tuple[tuple[str, ...], ...] = ()
    max_length: dict[str, int] = field(default_factory=dict)
    binds: dict[str, tuple[str, str]] = field(default_factory=dict)  # nav -> (column, set)


TABLES: dict[str, Table] = {
    "accounts": Table("account", "accountid", {
        "accountid": "guid", "name": "string", "accountnumber": "string",
        "telephone1": "string", "emailaddress1": "string", "websiteurl": "string",
        "address1_line1": "string", "address1_city": "string", "address1_postalcode": "string",
        "address1_country": "string", "revenue": "money", "numberofemployees": "int",
        "statecode": "int", "statuscode": "int", "crm2erp_erpcustomerid": "string", **_SYSTEM},
        (("accountnumber",),), {"name": 160, "crm2erp_erpcustomerid": 100}),
    "contacts": Table("contact", "contactid", {
        "contactid": "guid", "firstname": "string", "lastname": "string",
        "emailaddress1": "string", "telephone1": "string", "mobilephone": "string",
        "jobtitle": "string", "_parentcustomerid_value": "lookup", "statecode": "int",
        "statuscode": "int", "crm2erp_externalid": "string", **_SYSTEM}, (("crm2erp_externalid",),),
        {"lastname": 50}, {"parentcustomerid_account": ("_parentcustomerid_value", "accounts")}),
    "opportunities": Table("opportunity", "opportunityid", {
        "opportunityid": "guid", "name": "string", "_parentaccountid_value": "lookup",
        "estimatedvalue": "money", "estimatedclosedate": "date", "closeprobability": "int",
        "stepname": "string", "statecode": "int", "statuscode": "int",
        "crm2erp_externalid": "string", **_SYSTEM}, (("crm2erp_externalid",),),
        {"name": 300}, {"parentaccountid": ("_parentaccountid_value", "accounts")}),
    "opportunityproducts": Table("opportunityproduct", "opportunityproductid", {
        "opportunityproductid": "guid", "_opportunityid_value": "lookup",
        "_productid_value": "lookup", "productdescription": "string", "quantity": "decimal",
        "priceperunit": "money", "extendedamount": "money", **_SYSTEM}, (), {},
        {"opportunityid": ("_opportunityid_value", "opportunities"),
         "productid": ("_productid_value", "products")}),
    "products": Table("product", "productid", {
        "productid": "guid", "name": "string", "productnumber": "string",
        "description": "string", "price": "money", "statecode": "int", **_SYSTEM},
        (("productnumber",),), {"name": 100}),
    "audits": Table("audit", "auditid", {
        "auditid": "guid", "_objectid_value": "lookup", "objecttypecode": "string",
        "operation": "int", "action": "int", "createdon": "datetime"}),
}
READ_ONLY = {"createdon", "modifiedon", "versionnumber", "extendedamount"}
_WORDS = ["Contoso", "Fabrikam", "Adventure Works", "Northwind", "Litware", "Tailspin",
          "Wingtip", "Proseware", "Woodgrove", "Alpine Ski"]
_CITIES = [("Redmond", "United States"), ("Dublin", "Ireland"), ("Munich", "Germany"),
           ("Lyon", "France"), ("Utrecht", "Netherlands")]
_FIRST = ["Alex", "Brooke", "Carlos", "Dana", "Eun-ji", "Femi", "Gita", "Henrik"]
_LAST = ["Baker", "Costa", "Dvorak", "Eriksen", "Fischer", "Haddad", "Ito"]


def guid_sort_key(value: Any) -> tuple[str, ...]:
    """SQL Server's uniqueidentifier order: the last group first (not text order)."""
    parts = str(value).split("-")
    return (parts[4], parts[3], parts[2], parts[1], parts[0]) if len(parts) == 5 else (str(value),)


class WriteError(ValueError):
    """A write Dataverse refuses: HTTP ``status`` and the error ``code``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


class Environment(RecordStore):
    """All tables of one emulated environment; every public method takes the lock."""

    def __init__(self, *, seed: int = 42, accounts: int = 100, contacts_per_account: int = 2,
                 opportunities_per_account: int = 1, products_per_opportunity: int = 2,
                 products: int = 20, same_stamp: int = 7,
                 start: dt.datetime = dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                 product_numbers: list[str] | None = None, won_every: int = 3):
        super().__init__(TABLES, seed=seed, start=start, same_stamp=same_stamp)
        self.product_numbers, self.won_every = list(product_numbers or []), won_every
        self._seed(accounts, contacts_per_account, opportunities_per_account,
                   products_per_opportunity, products)
        self.end_seed()

    def new_guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def insert(self, entity_set: str, values: dict[str, Any], stamp: dt.datetime) -> dict:
        table = TABLES[entity_set]
        row = dict.fromkeys(table.columns)
        row.update(values)
        row[table.key] = row.get(table.key) or self.new_guid()
        row.update(createdon=stamp, modifiedon=stamp,
                   versionnumber=self._next_version())
        return self.put(entity_set, row[table.key], row)

    def _seed(self, accounts, contacts_per, opps_per, lines_per, products) -> None:
        r = self.rng
        numbers = self.product_numbers or [f"PRD-{i + 1:05d}" for i in range(products)]
        catalogue = [self.insert("products", {
            "name": f"{r.choice(_WORDS)} Part {i + 1}", "productnumber": number,
            "price": Decimal(r.randint(5, 900)), "statecode": 0, "description": "Seeded"},
            self.seed_stamp("products")) for i, number in enumerate(numbers)]
        seeded = 0
        for i in range(accounts):
            city, country = r.choice(_CITIES)
            name = f"{r.choice(_WORDS)} {i + 1}"
            account = self.insert("accounts", {
                "name": name, "accountnumber": f"ACC-{i + 1:05d}", "statecode": 0,
                "telephone1": f"+1 425 555 {r.randint(1000, 9999)}",
                "emailaddress1": f"info@{name.split()[0].lower()}{i + 1}.example",
                "websiteurl": f"https://{name.split()[0].lower()}{i + 1}.example",
                "address1_line1": f"{r.randint(1, 300)} Market Street", "address1_city": city,
                "address1_postalcode": str(r.randint(10000, 99999)), "address1_country": country,
                "revenue": Decimal(r.randint(1, 900) * 1000),
                "numberofemployees": r.randint(3, 9000)},
                self.seed_stamp("accounts"))
            for j in range(contacts_per):
                first, last = r.choice(_FIRST), r.choice(_LAST)
                self.insert("contacts", {
                    "firstname": first, "lastname": last, "jobtitle": r.choice(["Buyer", "CEO"]),
                    "emailaddress1": f"{first}.{last}.{i + 1}.{j}@example.com".lower(),
                    "telephone1": account["telephone1"],
                    "_parentcustomerid_value": account["accountid"]}, self.seed_stamp("contacts"))
            for j in range(opps_per):
                seeded += 1
                won = bool(self.won_every) and seeded % self.won_every == 0
                opp = self.insert("opportunities", {
                    "name": f"{name} - opportunity {j + 1}", "statecode": 1 if won else 0,
                    "statuscode": 3 if won else 1,   # 1 In Progress, 3 Won
                    "_parentaccountid_value": account["accountid"], "closeprobability": 50,
                    "stepname": r.choice(["1-Qualify", "2-Develop", "3-Propose"]),
                    "estimatedclosedate":
                        (self.start + dt.timedelta(days=r.randint(0, 365))).date()},
                    self.seed_stamp("opportunities"))
                total = Decimal(0)
                for _ in range(lines_per):
                    product = r.choice(catalogue) if catalogue else None
                    qty = Decimal(r.randint(1, 20))
                    price = product["price"] if product else Decimal(10)
                    total += qty * price
                    self.insert("opportunityproducts", {
                        "_opportunityid_value": opp["opportunityid"], "quantity": qty,
                        "_productid_value": product["productid"] if product else None,
                        "priceperunit": price, "extendedamount": qty * price},
                        self.seed_stamp("opportunityproducts"))
                opp["estimatedvalue"] = total

    # -- reading and control -------------------------------------------------
    def all(self, entity_set: str) -> list[dict[str, Any]]:
        return self.select(entity_set)

    def touch(self, entity_set: str, n: int) -> list[str]:
        with self.lock:
            table, chosen = TABLES[entity_set], self.pick(entity_set, n)
            now = self.tick()
            for row in chosen:
                if "telephone1" in row:
                    row["telephone1"] = f"+1 206 555 {self.rng.randint(1000, 9999)}"
                self._modified(row, now)
            return [row[table.key] for row in chosen]

    def delete(self, entity_set: str, n: int) -> list[str]:
        with self.lock:
            table, chosen = TABLES[entity_set], self.pick(entity_set, n)
            now = self.tick()
            for row in chosen:
                self.delete_row(entity_set, row, now)
            return [row[table.key] for row in chosen]

    def delete_row(self, entity_set: str, row: dict[str, Any], now: dt.datetime) -> None:
        """Remove ``row``, writing its delete audit (operation 3) at ``now``."""
        table = TABLES[entity_set]
        with self.lock:
            self.remove(entity_set, row[table.key])
            self.insert("audits", {"_objectid_value": row[table.key], "operation": 3,
                                   "action": 3, "objecttypecode": table.logical}, now)

    def _modified(self, row: dict[str, Any], now: dt.datetime) -> None:
        row.update(modifiedon=now, versionnumber=self._next_version())

    def _next_version(self) -> int:
        return self.next_number("versionnumber", _FIRST_VERSION)

    # -- writing ---------------------------------------------------------------
    def find(self, entity_set: str, key: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            for row in self.tables[entity_set].values():
                if all(str(row.get(c) or "").lower() == str(v).lower() for c, v in key.items()):
                    return row
            return None

    def coerce(self, entity_set: str, column: str, value: Any) -> Any:
        table = TABLES[entity_set]
        kind = table.columns.get(column)
        where = f"Microsoft.Dynamics.CRM.{table.logical}"
        if kind is None or kind in ("guid", "lookup"):
            raise WriteError(400, "0x80048d19", "Error identified in Payload provided by the "
                             f"user for Entity :'{entity_set}', For more information on this "
                             "error please follow this help link https://go.microsoft.com/"
                             "fwlink/?linkid=2195293  ---->  InnerException : Microsoft.OData."
                             f"ODataException: The property '{column}' does not exist on type "
                             f"'{where}'. Make sure to only use property names that are "
                             "defined by the type or mark the type as open type."
                             if kind is None else
                             f"Cannot update '{column}' directly; use the navigation property"
                             " with @odata.bind.")
        if column in READ_ONLY:
            raise WriteError(400, "0x80048d19", f"Error identified in Payload provided by the "
                             f"user for Entity :'{entity_set}': '{column}' is read-only.")
        if value is None:
            return None
        try:
            if kind in ("money", "decimal"):
                return Decimal(str(value))
            if kind == "int":
                return int(value)
            if kind == "date":
                return dt.date.fromisoformat(str(value)[:10])
            if kind == "datetime":
                return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except (ValueError, InvalidOperation):
            raise WriteError(400, "0x80048d19", f"Error identified in Payload provided by the "
                             f"user for Entity :'{entity_set}': cannot convert {value!r} to "
                             f"{kind} for '{column}'.") from None
        limit = table.max_length.get(column)
        if limit and len(str(value)) > limit:
            raise WriteError(400, "0x80044331", f"A validation error occurred. The length of "
                             f"the '{column}' attribute of the '{table.logical}' entity exceeded "
                             f"the maximum allowed length of '{limit}'.")
        return str(value)

    def upsert(self, entity_set: str, key: dict[str, Any], body: dict[str, Any],
               condition: str | None) -> tuple[dict[str, Any], bool]:
        """PATCH semantics; ``condition`` is ``create`` (If-None-Match) or ``update`` (If-Match)."""
        table = TABLES[entity_set]
        with self.lock:
            values: dict[str, Any] = {}
            for name, value in body.items():
                if name.endswith("@odata.bind"):
                    nav = name[: -len("@odata.bind")]
                    if nav not in table.binds:
                        raise WriteError(400, "0x80060888", f"An undeclared property '{nav}' "
                                         "which only has property annotations in the payload "
                                         "but no property value was found in the payload.")
                    column, target_set = table.binds[nav]
                    values[column] = self._resolve(target_set, value)
                else:
                    values[name] = self.coerce(entity_set, name, value)
            existing = self.find(entity_set, key)
            if existing is not None and condition == "create":
                raise WriteError(412, "0x80040237", "A record with matching key values "
                                 "already exists.")
            if existing is None and condition == "update":
                raise WriteError(404, "0x80040217", f"{table.logical} With Ids = "
                                 f"{', '.join(f'{k}={v}' for k, v in key.items())} Does Not Exist")
            now = self.tick()
            if existing is None:
                values.update({k: v for k, v in key.items() if k != table.key})
                if table.key in key:
                    values[table.key] = key[table.key]
                return self.insert(entity_set, values, now), True
            existing.update(values)
            self._modified(existing, now)
            return existing, False

    def _resolve(self, target_set: str, ref: Any) -> str:
        """``/accounts(<guid>)`` or ``/accounts(accountnumber='A-1')`` -> the row's GUID."""
        text = str(ref).lstrip("/")
        name, _, rest = text.partition("(")
        table = TABLES.get(name)
        try:
            key = parse_key(rest[:-1], table.key) if table and rest.endswith(")") else None
        except ODataError:
            key = None
        row = self.find(name, key) if key is not None else None
        if row is None:
            raise WriteError(400, "0x80040217", f"Entity reference {ref} Does Not Exist")
        return row[table.key]

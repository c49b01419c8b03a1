"""The emulator's in-memory Salesforce org: schema, deterministic seed data, upsert rules.

Records are plain dicts with Python values (``datetime`` for datetimes,
``date`` for dates) in the kernel's record store, whose logical clock gives
``SystemModstamp``; the WSGI layer turns them into Salesforce JSON/CSV.
"""

from __future__ import annotations

__all__ = ["SCHEMA", "REQUIRED", "STREAM_ALIASES", "Org", "salesforce_id"]

import datetime as dt
import re
from typing import Any

from crm2erp.emulators.kernel.store import RecordStore

SCHEMA: dict[str, dict[str, str]] = {
    "Account": {"Id": "id", "Name": "string", "Phone": "phone", "Website": "url",
                "Industry": "picklist", "BillingStreet": "string", "BillingCity": "string",
                "BillingPostalCode": "string", "BillingCountry": "string",
                "AnnualRevenue": "currency", "NumberOfEmployees": "int", "ERP_Id__c": "string",
                "Active__c": "boolean"},
    "Contact": {"Id": "id", "AccountId": "reference", "FirstName": "string",
                "LastName": "string", "Email": "email", "Phone": "phone", "Title": "string",
                "ERP_Id__c": "string", "Active__c": "boolean"},
    "Opportunity": {"Id": "id", "AccountId": "reference", "Name": "string",
                    "StageName": "picklist", "Amount": "currency", "CloseDate": "date",
                    "Probability": "percent", "ERP_Id__c": "string"},
    "OpportunityLineItem": {"Id": "id", "OpportunityId": "reference",
                            "Product2Id": "reference", "ProductCode": "string",
                            "Name": "string", "Description": "textarea", "Quantity": "double",
                            "UnitPrice": "currency", "TotalPrice": "currency",
                            "ERP_Id__c": "string"},
    "Product2": {"Id": "id", "Name": "string", "ProductCode": "string", "Family": "picklist",
                 "IsActive": "boolean", "ERP_Id__c": "string"},
    # a custom object many orgs add for the ERP's invoices (the mapping packs' return flow)
    "ERP_Invoice__c": {"Id": "id", "Name": "string", "Account__c": "reference",
                       "Opportunity__c": "reference", "Invoice_Date__c": "date",
                       "Due_Date__c": "date", "Status__c": "picklist",
                       "Currency__c": "string", "Total_Amount__c": "currency",
                       "Tax_Amount__c": "currency", "Amount_Due__c": "currency",
                       "ERP_Id__c": "string"},
}
for _fields in SCHEMA.values():
    _fields.update({"CreatedDate": "datetime", "LastModifiedDate": "datetime",
                    "SystemModstamp": "datetime", "IsDeleted": "boolean"})
REQUIRED = {"Account": ["Name"], "Contact": ["LastName"],
            "Opportunity": ["Name", "StageName", "CloseDate"],
            "OpportunityLineItem": ["OpportunityId", "Quantity", "UnitPrice"],
            "Product2": ["Name"], "ERP_Invoice__c": ["Name", "Account__c"]}
READ_ONLY = {"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted", "TotalPrice"}
EXTERNAL_IDS = {"ERP_Id__c"}
PREFIX = {"Account": "001", "Contact": "003", "Opportunity": "006",
          "OpportunityLineItem": "00k", "Product2": "01t", "ERP_Invoice__c": "a0I"}
STREAM_ALIASES = {"accounts": "Account", "contacts": "Contact", "opportunities": "Opportunity",
                  "opportunity_line_items": "OpportunityLineItem", "products": "Product2"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.I)
_WORDS = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay",
          "Soylent", "Tyrell", "Cyberdyne", "Wonka", "Aperture", "Massive", "Nakatomi"]
_KINDS = ["Industries", "Logistics", "Systems", "Foods", "Labs", "Partners", "GmbH", "Ltd"]
# Phone prefixes of numbers set aside for drama and documentation (Ofcom 0113 496,
# NANP 555, ...): with four more digits each is a valid number of its country.
_CITIES = [("Berlin", "Germany", "+49 30 5550"), ("Lyon", "France", "+33 4 7255"),
           ("Austin", "United States", "+1 512 555"), ("Leeds", "United Kingdom", "+44 113 496"),
           ("Turin", "Italy", "+39 011 555"), ("Porto", "Portugal", "+351 22 555")]
_FIRST = ["Anna", "Ben", "Chloe", "David", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas"]
_LAST = ["Schmidt", "Martin", "Garcia", "Rossi", "Novak", "Jensen", "Kowalski", "Silva"]
_STAGES = ["Prospecting", "Qualification", "Proposal/Price Quote", "Closed Won", "Closed Lost"]


def salesforce_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id; the 3-letter suffix encodes the case of the 15."""
    base = f"{prefix}Hn{number:010d}"
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, c in enumerate(base[chunk * 5:chunk * 5 + 5]) if c.isupper())
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return base + suffix


def _live(record: dict[str, Any]) -> bool:
    return not record["IsDeleted"]


class Org(RecordStore):
    """All sObject tables of one emulated org; every public method takes the lock."""

    def __init__(self, *, seed: int = 42, accounts: int = 100, contacts_per_account: int = 2,
                 opportunities_per_account: int = 1, line_items_per_opportunity: int = 2,
                 products: int = 20, same_stamp: int = 7,
                 start: dt.datetime = dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                 product_codes: list[str] | None = None):
        super().__init__(SCHEMA, seed=seed, start=start, same_stamp=same_stamp)
        self.product_codes = list(product_codes or [])
        self._seed(accounts, contacts_per_account, opportunities_per_account,
                   line_items_per_opportunity, products)
        self.end_seed()

    # -- seeding -------------------------------------------------------
    def _add(self, sobject: str, values: dict[str, Any], stamp: dt.datetime) -> dict[str, Any]:
        record = {name: None for name in SCHEMA[sobject]}
        record.update(values, Id=salesforce_id(PREFIX[sobject], self.next_number(sobject)),
                      CreatedDate=stamp, LastModifiedDate=stamp, SystemModstamp=stamp,
                      IsDeleted=False)
        return self.put(sobject, record["Id"], record)

    def _seed(self, accounts, contacts_per, opps_per, lines_per, products) -> None:
        r = self.rng
        catalogue = []
        codes = self.product_codes or [f"P-{i + 1:04d}" for i in range(products)]
        for i, code in enumerate(codes):
            catalogue.append(self._add("Product2", {
                "Name": f"{r.choice(_WORDS)} Widget {i + 1}", "ProductCode": code,
                "IsActive": True, "Family": r.choice(["Hardware", "Software", "Service"])},
                self.seed_stamp("Product2")))
        for i in range(accounts):
            city, country, phone = r.choice(_CITIES)
            name = f"{r.choice(_WORDS)} {r.choice(_KINDS)} {i + 1}"
            acc = self._add("Account", {
                "Name": name, "Phone": f"{phone} {r.randint(1000, 9999)}",
                "Website": f"https://www.{name.split()[0].lower()}{i + 1}.example",
                "Industry": r.choice(["Manufacturing", "Retail", "Technology", "Energy"]),
                "BillingStreet": f"{r.randint(1, 200)} Main Street", "BillingCity": city,
                "BillingPostalCode": f"{r.randint(10000, 99999)}", "BillingCountry": country,
                "AnnualRevenue": float(r.randint(1, 500) * 10000),
                "NumberOfEmployees": r.randint(5, 5000)}, self.seed_stamp("Account"))
            for j in range(contacts_per):
                first, last = r.choice(_FIRST), r.choice(_LAST)
                self._add("Contact", {
                    "AccountId": acc["Id"], "FirstName": first, "LastName": last,
                    "Email": f"{first}.{last}.{i + 1}.{j}@example.com".lower(),
                    "Phone": acc["Phone"], "Title": r.choice(["Buyer", "CFO", "Ops Lead"])},
                    self.seed_stamp("Contact"))
            for j in range(opps_per):
                opp = self._add("Opportunity", {
                    "AccountId": acc["Id"], "Name": f"{name} - deal {j + 1}",
                    "StageName": r.choice(_STAGES), "Amount": 0.0, "Probability": 50.0,
                    "CloseDate": (self.start + dt.timedelta(days=r.randint(0, 365))).date()},
                    self.seed_stamp("Opportunity"))
                total = 0.0
                for _ in range(lines_per):
                    qty, price = float(r.randint(1, 20)), float(r.randint(5, 900))
                    total += qty * price
                    product = r.choice(catalogue)
                    self._add("OpportunityLineItem", {
                        "OpportunityId": opp["Id"], "Product2Id": product["Id"],
                        "ProductCode": product["ProductCode"],
                        "Name": f"{opp['Name']} {product['Name']}",
                        "Quantity": qty, "UnitPrice": price, "TotalPrice": qty * price},
                        self.seed_stamp("OpportunityLineItem"))
                opp["Amount"] = total

    # -- reading -------------------------------------------------------
    def records(self, sobject: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        return self.select(sobject, None if include_deleted else _live)

    def count(self, sobject: str) -> int:
        return len(self.records(sobject))

    def exists(self, record_id: str) -> bool:
        with self.lock:
            return any(record_id in t and not t[record_id]["IsDeleted"]
                       for t in self.tables.values())

    # -- changing ------------------------------------------------------
    def touch(self, sobject: str, n: int) -> list[str]:
        """Modify ``n`` random live records at one instant (a mass update)."""
        with self.lock:
            chosen = self.pick(sobject, n, _live)
            now = self.tick()
            for rec in chosen:
                if "Phone" in rec:
                    rec["Phone"] = f"+1 555 {self.rng.randint(1000000, 9999999)}"
                rec["LastModifiedDate"] = rec["SystemModstamp"] = now
            return [r["Id"] for r in chosen]

    def delete(self, sobject: str, n: int) -> list[str]:
        with self.lock:
            chosen = self.pick(sobject, n, _live)
            now = self.tick()
            for rec in chosen:
                rec["IsDeleted"], rec["SystemModstamp"] = True, now
            return [r["Id"] for r in chosen]

    def delete_ids(self, ids: list[str], all_or_none: bool) -> list[dict[str, Any]]:
        """sObject Collections delete semantics; one DeleteResult per Id, in order."""
        def err(code, message):
            return {"success": False, "errors": _errors(code, message)}
        with self.lock:
            plans = []
            for record_id in ids:
                record = self._by_id(record_id)
                if not re.fullmatch(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?", record_id):
                    plans.append((None, err("MALFORMED_ID", f"malformed id {record_id}")))
                elif record is None or record["IsDeleted"]:
                    plans.append((None, err("ENTITY_IS_DELETED", "entity is deleted")))
                else:
                    plans.append((record, None))
            failed = any(error for _, error in plans)
            now = self.tick()
            results = []
            for record, error in plans:
                if error or (failed and all_or_none):
                    results.append(error or {"success": False, "errors": _rolled_back()})
                    continue
                record["IsDeleted"], record["SystemModstamp"] = True, now
                results.append({"id": record["Id"], "success": True, "errors": []})
            return results

    def upsert(self, sobject: str, ext_field: str, records: list[dict[str, Any]],
               all_or_none: bool) -> list[dict[str, Any]]:
        """sObject Collections upsert semantics; returns one UpsertResult per record."""
        with self.lock:
            table = self.tables[sobject]
            by_ext = {r[ext_field]: r for r in table.values()
                      if r[ext_field] is not None and not r["IsDeleted"]}
            plans, results = [], []
            for values in records:
                errors = self._validate(sobject, ext_field, values, by_ext)
                plans.append((values, errors))
            failed = any(errors for _, errors in plans)
            now = self.tick()
            for values, errors in plans:
                if errors or (failed and all_or_none):
                    errors = errors or _rolled_back()
                    results.append({"success": False, "errors": errors})
                    continue
                fields = {k: _coerce(SCHEMA[sobject][k], v)
                          for k, v in values.items() if k != "attributes"}
                existing = by_ext.get(values[ext_field])
                if existing is None:
                    existing = self._add(sobject, fields, now)
                    by_ext[values[ext_field]] = existing
                    created = True
                else:
                    existing.update(fields, LastModifiedDate=now, SystemModstamp=now)
                    created = False
                results.append({"id": existing["Id"], "success": True, "errors": [],
                                "created": created})
            return results

    def update(self, records: list[dict[str, Any]], all_or_none: bool) -> list[dict[str, Any]]:
        """sObject Collections update (by Id) semantics; one SaveResult per record."""
        with self.lock:
            plans, claimed = [], {}
            for values in records:
                sobject = (values.get("attributes") or {}).get("type")
                record = self._by_id(str(values.get("Id") or ""))
                errors = self._check_update(sobject, record, values, claimed)
                plans.append((sobject, record, values, errors))
            failed = any(errors for *_, errors in plans)
            now = self.tick()
            results = []
            for sobject, record, values, errors in plans:
                if errors or (failed and all_or_none):
                    errors = errors or _rolled_back()
                    results.append({"id": values.get("Id"), "success": False,
                                    "errors": errors})
                    continue
                record.update({k: _coerce(SCHEMA[sobject][k], v) for k, v in values.items()
                               if k not in ("attributes", "Id")},
                              LastModifiedDate=now, SystemModstamp=now)
                results.append({"id": record["Id"], "success": True, "errors": []})
            return results

    def _by_id(self, record_id: str) -> dict[str, Any] | None:
        for table in self.tables.values():
            if record_id in table:
                return table[record_id]
        return None

    def _check_update(self, sobject, record, values, claimed) -> list[dict[str, Any]]:
        if sobject not in SCHEMA:
            return _errors("INVALID_TYPE", "attributes.type is missing or not an sObject type")
        if record is None or record["Id"] not in self.tables[sobject]:
            return _errors("INVALID_CROSS_REFERENCE_KEY",
                       f"invalid cross reference id: {values.get('Id')}", ["Id"])
        if record["IsDeleted"]:
            return _errors("ENTITY_IS_DELETED", "entity is deleted", ["Id"])
        for name, value in values.items():
            if name in ("attributes", "Id"):
                continue
            if name in READ_ONLY:
                return _errors("INVALID_FIELD_FOR_INSERT_UPDATE",
                           f"Unable to create/update fields: {name}.", [name])
            if name in EXTERNAL_IDS and value not in (None, ""):
                taken = [r["Id"] for r in self.tables[sobject].values()
                         if r[name] == value and r["Id"] != record["Id"] and not r["IsDeleted"]]
                other = claimed.get((sobject, name, value))
                taken += [other] if other not in (None, record["Id"]) else []
                if taken:
                    return _errors("DUPLICATE_VALUE", f"duplicate value found: {name} duplicates "
                               f"value on record with id: {taken[0]}", [name])
        for name, value in values.items():
            if name in EXTERNAL_IDS and value not in (None, ""):
                claimed[(sobject, name, value)] = record["Id"]
        return []

    def _validate(self, sobject, ext_field, values, by_ext) -> list[dict[str, Any]]:
        if (values.get("attributes") or {}).get("type") != sobject:
            return _errors("INVALID_TYPE", f"attributes.type must be {sobject}")
        if values.get(ext_field) in (None, ""):
            return _errors("REQUIRED_FIELD_MISSING", f"{ext_field} not specified", [ext_field])
        for name in values:
            if name in READ_ONLY:
                return _errors("INVALID_FIELD_FOR_INSERT_UPDATE",
                           f"Unable to create/update fields: {name}.", [name])
        if values[ext_field] not in by_ext:
            missing = [f for f in REQUIRED[sobject] if values.get(f) in (None, "")]
            if missing:
                return _errors("REQUIRED_FIELD_MISSING",
                           f"Required fields are missing: [{', '.join(missing)}]", missing)
        for name, value in values.items():
            kind = SCHEMA[sobject].get(name)
            if kind == "email" and value and not _EMAIL.match(str(value)):
                return _errors("INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {value}",
                           [name])
            if kind == "reference" and value and not self.exists(str(value)):
                return _errors("INVALID_CROSS_REFERENCE_KEY",
                           f"invalid cross reference id: {value}", [name])
            if kind == "string" and isinstance(value, str) and len(value) > 255:
                return _errors("STRING_TOO_LONG", f"{name}: data value too large", [name])
        return []


def _errors(code: str, message: str, fields=()) -> list[dict[str, Any]]:
    """The ``errors`` of a failed SaveResult/UpsertResult/DeleteResult."""
    return [{"statusCode": code, "message": message, "fields": list(fields)}]


def _rolled_back() -> list[dict[str, Any]]:
    return _errors("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all "
                   "records were valid and the request was using AllOrNone header")


def _coerce(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime" and isinstance(value, str):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if kind == "date" and isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    if kind in ("currency", "double", "percent"):
        return float(value)
    if kind == "int":
        return int(value)
    return value

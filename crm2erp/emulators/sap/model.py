"""The SAP emulator's data: entity types of the four APIs, a store, seed data.

Types are declared with the property kinds SAP's ``$metadata`` gives them
(``s`` Edm.String with max length, ``d`` Edm.DateTime, ``dto``
Edm.DateTimeOffset, ``t`` Edm.Time, ``dec`` Edm.Decimal, ``b`` Edm.Boolean),
so the emulator serialises exactly as SAP does and refuses what SAP refuses:
unknown properties, strings too long, missing mandatory values.
"""

from __future__ import annotations

__all__ = ["EntityType", "TYPES", "SERVICES", "DEFAULT_FLAGS", "Store", "EmulatorError"]

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from crm2erp.connectors.sap.odata import format_date, format_time, parse_date, parse_time
from crm2erp.emulators.kernel.store import RecordStore


class EmulatorError(Exception):
    """An SAP error answer: HTTP status, message code and text."""

    def __init__(self, status: int, code: str, message: str, target: str = ""):
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target


@dataclass
class EntityType:
    name: str
    service: str
    keys: list[str]
    props: dict[str, str]
    navs: dict[str, tuple[str, str]] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    link: dict[str, str] = field(default_factory=dict)   # child key <- parent property
    number: str | None = None          # key generated on create (from a counter)
    stamps: tuple[str, ...] = ()       # set on create and every change
    created: tuple[str, str] | None = None   # (date, time) set on create only
    changed: tuple[str, str] | None = None   # (date, time) set on change only


def _p(spec: str) -> dict[str, str]:
    """``"A:s10 B:d"`` -> ``{"A": "s10", "B": "d"}``."""
    return dict(item.split(":") for item in spec.split())


_BP_SERVICE, _SO_SERVICE = "API_BUSINESS_PARTNER", "API_SALES_ORDER_SRV"
_BILL_SERVICE, _PIR_SERVICE = "API_BILLING_DOCUMENT_SRV", "API_PLND_INDEP_RQMT_SRV"
_PIR_KEYS = ["Product", "Plant", "MRPArea", "PlndIndepRqmtType", "PlndIndepRqmtVersion",
             "RequirementPlan", "RequirementSegment"]
TYPES: dict[str, EntityType] = {t.name: t for t in [
    EntityType("A_BusinessPartner", _BP_SERVICE, ["BusinessPartner"], _p(
        "BusinessPartner:s10 Customer:s10 BusinessPartnerCategory:s1 BusinessPartnerFullName:s81 "
        "BusinessPartnerGrouping:s4 BusinessPartnerName:s81 BusinessPartnerUUID:s36 "
        "OrganizationBPName1:s40 OrganizationBPName2:s40 FirstName:s40 LastName:s40 "
        "SearchTerm1:s20 SearchTerm2:s20 BusinessPartnerIDByExtSystem:s20 Industry:s10 "
        "Language:s2 IsMarkedForArchiving:b BusinessPartnerIsBlocked:b CreatedByUser:s12 "
        "CreationDate:d CreationTime:t LastChangedByUser:s12 LastChangeDate:d LastChangeTime:t"),
        navs={"to_BusinessPartnerAddress": ("A_BusinessPartnerAddress", "many"),
              "to_BusinessPartnerRole": ("A_BusinessPartnerRole", "many"),
              "to_Customer": ("A_Customer", "one")},
        required=["BusinessPartnerCategory"], number="BusinessPartner",
        created=("CreationDate", "CreationTime"), changed=("LastChangeDate", "LastChangeTime")),
    EntityType("A_BusinessPartnerAddress", _BP_SERVICE, ["BusinessPartner", "AddressID"], _p(
        "BusinessPartner:s10 AddressID:s10 CityName:s40 PostalCode:s10 StreetName:s60 "
        "HouseNumber:s10 Country:s3 Region:s3 Language:s2 ValidityStartDate:dto "
        "ValidityEndDate:dto"), required=["Country"], number="AddressID",
        navs={"to_PhoneNumber": ("A_AddressPhoneNumber", "many"),
              "to_EmailAddress": ("A_AddressEmailAddress", "many")}),
    EntityType("A_AddressPhoneNumber", _BP_SERVICE, ["AddressID", "Person", "OrdinalNumber"], _p(
        "AddressID:s10 Person:s10 OrdinalNumber:s3 DestinationLocationCountry:s3 "
        "IsDefaultPhoneNumber:b PhoneNumber:s30 PhoneNumberExtension:s10 "
        "InternationalPhoneNumber:s30 PhoneNumberType:s1"),
        required=["PhoneNumber"], number="OrdinalNumber"),
    EntityType("A_AddressEmailAddress", _BP_SERVICE, ["AddressID", "Person", "OrdinalNumber"], _p(
        "AddressID:s10 Person:s10 OrdinalNumber:s3 IsDefaultEmailAddress:b EmailAddress:s241 "
        "SearchEmailAddress:s20"), required=["EmailAddress"], number="OrdinalNumber"),
    EntityType("A_BusinessPartnerRole", _BP_SERVICE, ["BusinessPartner", "BusinessPartnerRole"],
               _p("BusinessPartner:s10 BusinessPartnerRole:s6 ValidFrom:dto ValidTo:dto"),
               required=["BusinessPartnerRole"]),
    EntityType("A_Customer", _BP_SERVICE, ["Customer"], _p(
        "Customer:s10 CustomerName:s80 CustomerFullName:s220 CustomerAccountGroup:s4 "
        "VATRegistration:s20 DeletionIndicator:b OrderIsBlockedForCustomer:s2"),
        link={"Customer": "BusinessPartner"}),
    EntityType("A_SalesOrder", _SO_SERVICE, ["SalesOrder"], _p(
        "SalesOrder:s10 SalesOrderType:s4 SalesOrganization:s4 DistributionChannel:s2 "
        "OrganizationDivision:s2 SoldToParty:s10 PurchaseOrderByCustomer:s35 "
        "CustomerPurchaseOrderDate:d SalesOrderDate:d RequestedDeliveryDate:d "
        "TotalNetAmount:dec TransactionCurrency:s5 OverallSDProcessStatus:s1 "
        "CreationDate:d LastChangeDate:d LastChangeDateTime:dto"),
        navs={"to_Item": ("A_SalesOrderItem", "many")},
        required=["SalesOrderType", "SalesOrganization", "DistributionChannel",
                  "OrganizationDivision", "SoldToParty"],
        number="SalesOrder", stamps=("LastChangeDateTime",)),
    EntityType("A_SalesOrderItem", _SO_SERVICE, ["SalesOrder", "SalesOrderItem"], _p(
        "SalesOrder:s10 SalesOrderItem:s6 Material:s40 SalesOrderItemText:s40 "
        "RequestedQuantity:dec RequestedQuantityUnit:s3 NetAmount:dec TransactionCurrency:s5 "
        "NetPriceAmount:dec"), required=["Material", "RequestedQuantity"],
        number="SalesOrderItem"),
    EntityType("A_BillingDocument", _BILL_SERVICE, ["BillingDocument"], _p(
        "BillingDocument:s10 BillingDocumentType:s4 SDDocumentCategory:s4 "
        "BillingDocumentDate:d CreationDate:d LastChangeDate:d LastChangeDateTime:dto "
        "TotalNetAmount:dec TotalTaxAmount:dec TransactionCurrency:s5 SoldToParty:s10 "
        "PayerParty:s10 CustomerPaymentTerms:s4 AccountingPostingStatus:s1 "
        "OverallBillingStatus:s1 BillingDocumentIsCancelled:b CancelledBillingDocument:s10"),
        navs={"to_Item": ("A_BillingDocumentItem", "many")}, number="BillingDocument",
        stamps=("LastChangeDateTime",)),
    EntityType("A_BillingDocumentItem", _BILL_SERVICE, ["BillingDocument", "BillingDocumentItem"],
               _p("BillingDocument:s10 BillingDocumentItem:s6 Material:s40 "
                  "BillingDocumentItemText:s40 BillingQuantity:dec BillingQuantityUnit:s3 "
                  "NetAmount:dec TaxAmount:dec TransactionCurrency:s5 SalesDocument:s10 "
                  "SalesDocumentItem:s6"), number="BillingDocumentItem"),
    EntityType("PlannedIndepRqmt", _PIR_SERVICE, _PIR_KEYS, _p(
        "Product:s40 Plant:s4 MRPArea:s10 PlndIndepRqmtType:s4 PlndIndepRqmtVersion:s2 "
        "RequirementPlan:s10 RequirementSegment:s40 PlndIndepRqmtInternalID:s12 "
        "PlndIndepRqmtIsActive:s1 LastChangedByUser:s12 PlndIndepRqmtLastChgdDateTime:dto"),
        navs={"to_PlndIndepRqmtItem": ("PlannedIndepRqmtItem", "many")},
        required=["Product", "Plant", "PlndIndepRqmtVersion"],
        stamps=("PlndIndepRqmtLastChgdDateTime",)),
    EntityType("PlannedIndepRqmtItem", _PIR_SERVICE, [*_PIR_KEYS, "PlndIndepRqmtPeriod",
                                                      "PeriodType"], _p(
        "Product:s40 Plant:s4 MRPArea:s10 PlndIndepRqmtType:s4 PlndIndepRqmtVersion:s2 "
        "RequirementPlan:s10 RequirementSegment:s40 PlndIndepRqmtPeriod:s8 PeriodType:s1 "
        "WorkingDayDate:d PlannedQuantity:dec UnitOfMeasure:s3"),
        required=["PlndIndepRqmtPeriod", "PlannedQuantity"]),
]}
#: the flag marking the standard entry of each communication kind of an address
DEFAULT_FLAGS = {"A_AddressPhoneNumber": "IsDefaultPhoneNumber",
                 "A_AddressEmailAddress": "IsDefaultEmailAddress"}
SERVICES = sorted({t.service for t in TYPES.values()})
_ROOTS = ["A_BusinessPartner", "A_SalesOrder", "A_BillingDocument", "PlannedIndepRqmt"]


def decode_value(etype: EntityType, name: str, value: Any) -> Any:
    """A JSON property value from a client as the Python value the store keeps."""
    kind = etype.props.get(name)
    if kind is None:
        raise EmulatorError(400, "/IWBEP/CM_MGW_RT/021",
                            f"Property '{name}' is invalid for type {etype.name}", name)
    if value is None:
        return None
    try:
        if kind in ("d", "dto"):
            return parse_date(value) if isinstance(value, str) and value.startswith("/Date(") \
                else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if kind == "t":
            return parse_time(value)
        if kind == "dec":
            if isinstance(value, float):
                raise ValueError("Edm.Decimal must be sent as a string")
            return Decimal(str(value))
        if kind == "b":
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
            return value
    except (ValueError, InvalidOperation) as exc:
        raise EmulatorError(400, "/IWBEP/CM_MGW_RT/006",
                            f"Invalid value for property '{name}': {exc}", name) from None
    text = str(value)
    limit = int(kind[1:])
    if len(text) > limit:
        raise EmulatorError(400, "/IWBEP/CM_MGW_RT/007",
                            f"Value '{text[:50]}' of property '{name}' is longer than "
                            f"{limit} characters", name)
    return text


def encode_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "d":
        return format_date(value)
    if kind == "dto":
        return format_date(value, offset=True)
    if kind == "t":
        return format_time(value)
    if kind == "dec":
        return format(value, "f")
    return value


class Store(RecordStore):
    """Entities by type and key tuple; children are entities of their own types."""

    def __init__(self, seed: int, now: dt.datetime):
        super().__init__(TYPES, seed=seed, start=now)
        # the last number given out, per number range
        self.counters.update({"BusinessPartner": 1000000, "SalesOrder": 100,
                              "BillingDocument": 90000000, "AddressID": 20000, "PIR": 0})

    # -- etags ----------------------------------------------------------------
    def new_etag(self, entity: dict) -> None:
        entity["__etag"] = f"W/\"'{self.next_number('etag'):08d}'\""

    # -- navigation ---------------------------------------------------------
    @staticmethod
    def key_of(etype: EntityType, entity: dict) -> tuple:
        return tuple(entity.get(k) for k in etype.keys)

    def children(self, etype: EntityType, entity: dict, nav: str) -> list[dict]:
        child_type = TYPES[etype.navs[nav][0]]
        link = {c: p for c, p in child_type.link.items()}
        shared = [k for k in child_type.keys if k in etype.keys]
        out = []
        for child in self.tables[child_type.name].values():
            if link and all(child.get(c) == entity.get(p) for c, p in link.items()):
                out.append(child)
            elif not link and shared and all(child.get(k) == entity.get(k) for k in shared):
                out.append(child)
        return sorted(out, key=lambda c: tuple(str(c.get(k)) for k in child_type.keys))

    # -- writes -------------------------------------------------------------
    def stamp(self, etype: EntityType, entity: dict, created: bool) -> None:
        now = self.clock
        for name in etype.stamps:
            entity[name] = now
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        pair = etype.created if created else etype.changed
        if pair:
            entity[pair[0]], entity[pair[1]] = day, now.time().replace(microsecond=0)
        if "LastChangeDate" in etype.props and not etype.changed:
            entity["LastChangeDate"] = day
        if created and "CreationDate" in etype.props and not etype.created:
            entity["CreationDate"] = day
        self.new_etag(entity)

    def create(self, type_name: str, payload: dict[str, Any],
               parent: tuple[EntityType, dict] | None = None) -> dict:
        etype = TYPES[type_name]
        # Edm.Boolean properties are not nullable in SAP's APIs: false unless sent
        entity: dict[str, Any] = {name: False if kind == "b" else None
                                  for name, kind in etype.props.items()}
        nested = {}
        for name, value in payload.items():
            if name == "__metadata":
                continue
            if name in etype.navs:
                nested[name] = value
                continue
            entity[name] = decode_value(etype, name, value)
        if parent is not None:
            ptype, pentity = parent
            for key in etype.keys:
                if key in ptype.keys:
                    entity[key] = pentity[key]
            for child_key, parent_prop in etype.link.items():
                entity[child_key] = pentity[parent_prop]
        self._number(etype, entity, parent)
        self._validate(etype, entity)
        if self.key_of(etype, entity) in self.tables[type_name]:
            raise EmulatorError(400, "/IWBEP/CM_MGW_RT/033",
                                f"{type_name} {self.key_of(etype, entity)} already exists")
        self.stamp(etype, entity, created=True)
        self.put(type_name, self.key_of(etype, entity), entity)
        for nav, value in nested.items():
            items = value.get("results", value) if isinstance(value, dict) and \
                etype.navs[nav][1] == "many" else value
            for item in (items if isinstance(items, list) else [items]):
                self.create(etype.navs[nav][0], item, parent=(etype, entity))
        self._derive(etype, entity)
        return entity

    def _number(self, etype: EntityType, entity: dict, parent) -> None:
        field_name = etype.number
        if field_name and not entity.get(field_name):
            if field_name in ("SalesOrderItem", "BillingDocumentItem"):
                siblings = len(self.children(parent[0], parent[1], "to_Item")) if parent else 0
                entity[field_name] = str((siblings + 1) * 10)
            elif field_name == "OrdinalNumber":   # next free per address and kind
                used = [int(r["OrdinalNumber"]) for r in self.tables[etype.name].values()
                        if r["AddressID"] == entity.get("AddressID")]
                entity[field_name] = f"{max(used, default=0) + 1:03d}"
            else:
                entity[field_name] = str(self.next_number(field_name))
        if etype.name == "PlannedIndepRqmt" and not entity.get("PlndIndepRqmtInternalID"):
            entity["PlndIndepRqmtInternalID"] = f"{self.next_number('PIR'):012d}"
        for name in etype.keys:
            if entity.get(name) is None and etype.props[name].startswith("s"):
                entity[name] = ""

    def _validate(self, etype: EntityType, entity: dict) -> None:
        for name in etype.required:
            if entity.get(name) in (None, ""):
                raise EmulatorError(400, "/IWBEP/CM_MGW_RT/022",
                                    f"Property '{name}' of {etype.name} is mandatory", name)
        if etype.name == "A_BusinessPartner":
            if entity["BusinessPartnerCategory"] == "2" and not entity["OrganizationBPName1"]:
                raise EmulatorError(400, "R11/401", "Enter a name for the organization "
                                    "(OrganizationBPName1)", "OrganizationBPName1")
            if entity["BusinessPartnerCategory"] == "1" and not entity["LastName"]:
                raise EmulatorError(400, "R11/402", "Enter a last name", "LastName")
            if entity["BusinessPartnerCategory"] not in ("1", "2", "3"):
                raise EmulatorError(400, "R11/005", "Business partner category "
                                    f"{entity['BusinessPartnerCategory']} is not valid")
        if etype.name == "A_SalesOrder":
            customer = self.tables["A_Customer"].get((entity["SoldToParty"],))
            if customer is None:
                raise EmulatorError(400, "V1/302", f"Sold-to party {entity['SoldToParty']} "
                                    "is not defined for sales area "
                                    f"{entity['SalesOrganization']}/"
                                    f"{entity['DistributionChannel']}/"
                                    f"{entity['OrganizationDivision']}", "SoldToParty")

    def _derive(self, etype: EntityType, entity: dict) -> None:
        """What SAP computes itself: names, customer number, order totals."""
        if etype.name == "A_BusinessPartner":
            name = entity["OrganizationBPName1"] or " ".join(
                p for p in (entity["FirstName"], entity["LastName"]) if p)
            entity["BusinessPartnerFullName"] = entity["BusinessPartnerName"] = name
            roles = {r["BusinessPartnerRole"]
                     for r in self.children(etype, entity, "to_BusinessPartnerRole")}
            if "FLCU01" in roles or "FLCU00" in roles:
                entity["Customer"] = entity["BusinessPartner"]
                if (entity["BusinessPartner"],) not in self.tables["A_Customer"]:
                    self.create("A_Customer", {}, parent=(etype, entity))
                customer = self.tables["A_Customer"][(entity["BusinessPartner"],)]
                customer["CustomerName"] = customer["CustomerName"] or name[:80]
                customer["CustomerFullName"] = customer["CustomerFullName"] or name
        flag = DEFAULT_FLAGS.get(etype.name)
        if flag:   # one standard number / e-mail per address, as SAP keeps it
            siblings = [r for r in self.tables[etype.name].values()
                        if r["AddressID"] == entity["AddressID"]]
            if entity.get(flag):
                for other in siblings:
                    if other is not entity:
                        other[flag] = False
            elif not any(r.get(flag) for r in siblings):
                min(siblings, key=lambda r: r["OrdinalNumber"])[flag] = True
        if etype.name == "A_SalesOrder":
            total = Decimal("0")
            for item in self.children(etype, entity, "to_Item"):
                price = item.get("NetPriceAmount") or Decimal("0")
                item["NetAmount"] = (price * (item["RequestedQuantity"] or 0)).quantize(
                    Decimal("0.01"))
                item["TransactionCurrency"] = entity["TransactionCurrency"]
                total += item["NetAmount"]
            entity["TotalNetAmount"] = total

    def update(self, type_name: str, entity: dict, payload: dict[str, Any]) -> None:
        etype = TYPES[type_name]
        for name, value in payload.items():
            if name == "__metadata":
                continue
            if name in etype.navs:
                raise EmulatorError(400, "/IWBEP/CM_MGW_RT/090", "Deep update is not "
                                    f"supported; update {name} through its own entity set")
            if name in etype.keys and decode_value(etype, name, value) != entity.get(name):
                raise EmulatorError(400, "/IWBEP/CM_MGW_RT/091",
                                    f"Key property '{name}' cannot be changed", name)
            entity[name] = decode_value(etype, name, value)
        self._validate(etype, entity)
        self.stamp(etype, entity, created=False)
        self._derive(etype, entity)
        self.touch_root(etype, entity)

    def touch_root(self, etype: EntityType, entity: dict) -> None:
        """A child changed (or was deleted): its root record is changed too."""
        root = self.root_of(etype, entity)
        if root is not None and root[1] is not entity:
            self.stamp(root[0], root[1], created=False)
            self._derive(*root)

    def delete(self, etype: EntityType, entity: dict) -> None:
        """Remove a record with its children (deep delete, as SAP's API does)."""
        for nav, (target, _) in etype.navs.items():
            for child in self.children(etype, entity, nav):
                self.delete(TYPES[target], child)
        self.remove(etype.name, self.key_of(etype, entity))
        if etype.name in DEFAULT_FLAGS:
            siblings = [r for r in self.tables[etype.name].values()
                        if r["AddressID"] == entity["AddressID"]]
            if siblings and entity.get(DEFAULT_FLAGS[etype.name]):
                self._derive(etype, siblings[0])
        self.touch_root(etype, entity)

    def root_of(self, etype: EntityType, entity: dict) -> tuple[EntityType, dict] | None:
        if etype.name in DEFAULT_FLAGS:   # a phone or e-mail: its address's partner
            address = next((a for a in self.tables["A_BusinessPartnerAddress"].values()
                            if a["AddressID"] == entity["AddressID"]), None)
            return self.root_of(TYPES["A_BusinessPartnerAddress"], address) if address \
                else None
        for root_name in _ROOTS:
            rtype = TYPES[root_name]
            if etype is rtype:
                return rtype, entity
            if any(TYPES[target] is etype for target, _ in rtype.navs.values()):
                if etype.link:
                    key = tuple(entity[c] for c in etype.link)
                else:
                    key = tuple(entity.get(k) for k in rtype.keys)
                found = self.tables[root_name].get(key)
                return (rtype, found) if found is not None else None
        return None

"""Realistic, messy sample CRM data for the demo, the same on every run.

What a real CRM export looks like: stray spaces, country names instead of
codes, phone numbers typed every which way, a few records that cannot go
through (a broken e-mail, an account type the ERP does not know, a contact
whose account does not exist) and a few near-duplicate companies.
"""

from __future__ import annotations

__all__ = ["sample_crm_rows", "INVALID_ACCOUNTS", "QUALITY_ACCOUNTS", "ORPHAN_CONTACTS"]

import datetime as dt
import random
from decimal import Decimal

import phonenumbers

# (country as typed, ISO code, city, phone as typed, currency)
# accounts are stamped a day apart going back from now, within this span
MAX_SPAN_DAYS = 50 * 365

_PLACES = [
    ("Germany", "DE", "Berlin", "030 {a}{b}", "EUR"),
    ("germany ", "DE", "München", "+49 89 {a}{b}", "EUR"),
    ("Deutschland", "DE", "Hamburg", "(040) {a}-{b}", "EUR"),
    ("DE", "DE", "Köln", "0221/{a}{b}", "EUR"),
    ("France", "FR", "Paris", "01 4{d} {c} {e} {f}", "EUR"),
    ("United Kingdom", "GB", "London", "020 7{d}{c} {b}", "GBP"),
    ("UK", "GB", "Manchester", "+44 161 {a} {b}", "GBP"),
    ("United States", "US", "Chicago", "(312) 55{d}-{b}", "USD"),
    ("USA", "US", "Austin", "512-55{d}-{b}", "USD"),
    ("Austria", "AT", "Wien", "+43 1 {a}{b}", "EUR"),
    ("Switzerland", "CH", "Zürich", "044 {a} {b}", "CHF"),
    ("Netherlands", "NL", "Amsterdam", "020 {a} {b}", "EUR"),
]
_NAMES = ["Nordwind", "Alpenglühen", "Bluewater", "Kestrel", "Lindqvist", "Harbour",
          "Meridian", "Oakridge", "Polaris", "Quantum", "Riverside", "Sonnenschein",
          "Tannenbaum", "Vanguard", "Westbrook", "Zephyr", "Atlas", "Beacon", "Cobalt",
          "Delta", "Evergreen", "Falcon", "Granite", "Helios"]
_FORMS = ["GmbH", "AG", "Ltd", "Inc.", "SARL", "B.V.", "KG", "LLC"]
_TRADES = ["Logistics", "Engineering", "Foods", "Systems", "Textiles", "Medical",
           "Energy", "Robotics"]
_FIRST = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ida",
          "Jonas", "Lea", "Max", "Nora", "Oskar", "Paula", "Sophie", "Tom", "Zoe"]
_LAST = ["Müller", "Schmidt", "Smith", "Dubois", "Jansen", "Rossi", "Novak", "Weber",
         "Brown", "Fischer", "Keller", "Martin", "Walker", "Bauer"]
_TITLES = ["Purchasing Manager", " Head of Procurement", "CFO", "Buyer ", "CEO",
           "Accounts Payable"]
_TYPES = ["Customer", "customer ", "Prospect", "Partner", "Kunde", "CUSTOMER"]
_SKUS = [("PUMP-100", "420.00"), ("VALVE-20", "35.50"), ("SENSOR-7", "129.90"),
         ("MOTOR-3K", "1890.00"), ("CABLE-5M", "12.40"), ("SERVICE-H", "95.00")]

#: Accounts that cannot go through, and why (what the demo's dead letters show).
INVALID_ACCOUNTS = {
    "A-0007": ("email", "info@@nordwind-logistics.example"),
    "A-0013": ("account_type", "Reseller"),
    "A-0021": ("company_name", "   "),
    "A-0034": ("country", "Atlantis"),
}
#: Accounts the canonical model accepts but that are bad business data: the
#: demo accounts flow's ``quality:`` rule of this name quarantines them.
QUALITY_ACCOUNTS = {
    "A-0052": ("vat_id", "n/a", "tax id is a VAT number"),
}
#: Contacts whose account is not in the CRM: parked, not dropped.
ORPHAN_CONTACTS = {"C-0011": "A-9999", "C-0057": "A-9998"}
_NEAR_DUPLICATES = {"A-0041": "A-0001", "A-0042": "A-0001", "A-0043": "A-0002"}


def _phone(template: str, region: str, rng: random.Random) -> str:
    """A number typed the local way that is nevertheless valid for ``region``."""
    for _ in range(50):
        typed = template.format(a=rng.randint(200, 899), b=rng.randint(1000, 9999),
                                c=rng.randint(10, 99), d=rng.randint(1, 9),
                                e=rng.randint(10, 99), f=rng.randint(10, 99))
        if phonenumbers.is_valid_number(phonenumbers.parse(typed, region)):
            return typed
    raise AssertionError(f"no valid sample phone for template {template!r}")


def sample_crm_rows(accounts: int = 120, seed: int = 7,
                    now: dt.datetime | None = None) -> dict[str, list[dict]]:
    """Rows for the demo CRM's tables: accounts, contacts, deals, deal_lines."""
    rng = random.Random(seed)
    now = (now or dt.datetime(2026, 11, 2, 9, 0)).replace(microsecond=0)
    rows: dict[str, list[dict]] = {"accounts": [], "contacts": [], "deals": [],
                                   "deal_lines": []}
    # a day between accounts, or less when that would run past the calendar (1M accounts)
    step = min(dt.timedelta(days=1), dt.timedelta(days=MAX_SPAN_DAYS) / accounts)
    for n in range(1, accounts + 1):
        account_id = f"A-{n:04d}"
        country, region, city, phone, currency = rng.choice(_PLACES)
        name = f"{rng.choice(_NAMES)} {rng.choice(_TRADES)} {rng.choice(_FORMS)}"
        domain = name.split()[0].lower().replace("ü", "ue").replace("ä", "ae")
        row = {
            "id": account_id,
            "company_name": rng.choice(["", " ", "  "]) + name + rng.choice(["", " ", "  "]),
            "account_type": rng.choice(_TYPES),
            "email": rng.choice(["info", "sales", "Orders", "hello"]) + f"@{domain}.example",
            "phone": _phone(phone, region, rng),
            "street": f"{rng.choice(['Hauptstraße', 'Main St', 'Rue de Lyon', 'High Street'])}"
                      f"  {rng.randint(1, 200)}",
            "zip": f"{rng.randint(10000, 99999)}",
            "city": city + rng.choice(["", " "]),
            "country": country,
            "vat_id": f"{country[:2].upper()}{rng.randint(100000000, 999999999)} ",
            "currency": rng.choice([currency, currency.lower(), None]),
            "segment": rng.choice(["SMB", "Enterprise", "Mid-Market"]),
            "updated_at": now - step * (accounts - n) - dt.timedelta(minutes=rng.randint(0, 59)),
        }
        if account_id in INVALID_ACCOUNTS:
            field, value = INVALID_ACCOUNTS[account_id]
            row[field] = value
        if account_id in QUALITY_ACCOUNTS:
            field, value, _rule = QUALITY_ACCOUNTS[account_id]
            row[field] = value
        if account_id in _NEAR_DUPLICATES:
            original = rows["accounts"][int(_NEAR_DUPLICATES[account_id][2:]) - 1]
            row.update(company_name=original["company_name"].upper().strip() + " ",
                       country=original["country"], city=original["city"],
                       vat_id=original["vat_id"], email=original["email"].upper(),
                       phone=original["phone"].replace(" ", ""))
        rows["accounts"].append(row)
    _add_contacts(rows, rng, now)
    _add_deals(rows, rng, now)
    return rows


def _add_contacts(rows: dict[str, list[dict]], rng: random.Random, now: dt.datetime) -> None:
    accounts = rows["accounts"]
    for n in range(1, 2 * len(accounts) + 1):
        contact_id = f"C-{n:04d}"
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        account = accounts[(n - 1) % len(accounts)]
        rows["contacts"].append({
            "id": contact_id,
            "account_id": ORPHAN_CONTACTS.get(contact_id, account["id"]),
            "first_name": rng.choice(["", " "]) + first.lower() if n % 5 == 0 else first,
            "last_name": last.upper() if n % 7 == 0 else last,
            "email": f"{first}.{last}@example.com".lower().replace("ü", "ue"),
            "phone": _phone("+49 17{d} {a}{b}", "DE", rng),
            "job_title": rng.choice(_TITLES),
            "updated_at": now - dt.timedelta(hours=len(accounts) * 2 - n),
        })


def _add_deals(rows: dict[str, list[dict]], rng: random.Random, now: dt.datetime) -> None:
    accounts = [a for a in rows["accounts"] if a["id"] not in INVALID_ACCOUNTS]
    for n in range(1, len(rows["accounts"]) + 1):
        deal_id = f"D-{n:04d}"
        account = rng.choice(accounts)
        stage = rng.choices(["Closed Won", "Negotiation", "Closed Lost"], [6, 3, 1])[0]
        currency = next((p[4] for p in _PLACES if p[0] == account["country"]), "EUR")
        lines, total = [], Decimal("0")
        for line_no in range(1, rng.randint(1, 3) + 1):
            sku, price = rng.choice(_SKUS)
            qty = Decimal(rng.randint(1, 20))
            lines.append({"deal_id": deal_id, "line_no": line_no,
                          "sku": sku.lower() if line_no == 2 else sku,
                          "qty": qty, "unit_price": Decimal(price)})
            total += qty * Decimal(price)
        rows["deal_lines"].extend(lines)
        rows["deals"].append({
            "id": deal_id, "account_id": account["id"],
            "name": f"{account['company_name'].strip()} - order {n}",
            "stage": stage,
            "probability": {"Closed Won": 100, "Closed Lost": 0}.get(stage, 60),
            "amount": total, "currency": currency,
            "close_date": (now - dt.timedelta(days=rng.randint(0, 60))).date(),
            "updated_at": now - dt.timedelta(minutes=len(rows["accounts"]) - n),
        })

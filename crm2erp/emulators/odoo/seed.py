"""Realistic seed data for the Odoo emulator, deterministic by seed.

A small European B2B company: companies with contacts, a product catalogue,
an opportunity per company (some won, some lost and archived), confirmed
sale orders for some customers and posted customer invoices for those orders
(paid, partly paid or open). ``write_date`` values are in the past and
``same_stamp`` records share each one, as after an import or mass update.
"""

from __future__ import annotations

__all__ = ["seed_database"]

import datetime as dt
import random

from crm2erp.emulators.odoo.fakedb import DATETIME_FORMAT, FakeDb

_COUNTRIES = [("Germany", "DE"), ("France", "FR"), ("United Kingdom", "GB"),
              ("United States", "US"), ("Netherlands", "NL"), ("Austria", "AT"),
              ("Switzerland", "CH"), ("Spain", "ES"), ("Italy", "IT"), ("Belgium", "BE")]
_CITIES = {"DE": [("Berlin", "10115", "+49 30"), ("München", "80331", "+49 89"),
                  ("Hamburg", "20095", "+49 40")],
           "FR": [("Paris", "75002", "+33 1"), ("Lyon", "69002", "+33 4")],
           "GB": [("London", "EC1A 1BB", "+44 20")], "US": [("Boston", "02108", "+1 617")],
           "NL": [("Amsterdam", "1012 AB", "+31 20")], "AT": [("Wien", "1010", "+43 1")],
           "CH": [("Zürich", "8001", "+41 44")], "ES": [("Madrid", "28013", "+34 91")],
           "IT": [("Milano", "20121", "+39 02")], "BE": [("Bruxelles", "1000", "+32 2")]}
# subscriber digits after each area prefix, and the digits a valid number starts with
_LOCAL = {"+44 20": (8, "378"), "+32 2": (7, "2345"), "+1 617": (7, "23456789"),
          "+31 20": (7, "2345678"), "+43 1": (7, "2345678"), "+41 44": (7, "2345678"),
          "+34 91": (7, "2345678")}
_FORMS = {"DE": "GmbH", "AT": "GmbH", "CH": "AG", "FR": "SARL", "GB": "Ltd", "US": "Inc.",
          "NL": "B.V.", "ES": "S.L.", "IT": "S.r.l.", "BE": "SA"}
_WORDS = ["Nordwind", "Alpenglück", "Rheinblick", "Blue Harbor", "Atlas", "Kestrel", "Vega",
          "Lumen", "Falkenstein", "Orion", "Helix", "Granit", "Seestern", "Birkenhof",
          "Polaris", "Meridian", "Eichenwald", "Cobalt", "Silberfluss", "Zephyr"]
_TRADES = ["Logistik", "Maschinenbau", "Software", "Handel", "Medizintechnik", "Energie",
           "Bau", "Textil", "Consulting", "Foods"]
_FIRST = ["Anna", "Jonas", "Marie", "Lukas", "Sophie", "Paul", "Léa", "Hugo", "Emma",
          "Oliver", "Chiara", "Mateo", "Lotte", "Finn", "Ines", "Noah"]
_LAST = ["Müller", "Schmidt", "Dubois", "Martin", "Smith", "Jansen", "Rossi", "García",
         "Weber", "Fischer", "Bernard", "Wagner", "Peeters", "Huber", "Keller", "Brown"]
_JOBS = ["Einkauf", "Geschäftsführung", "Head of Operations", "Buyer", "CFO", "IT-Leitung"]
_PRODUCTS = [("Bürostuhl Ergo", 289.0), ("Schreibtisch Höhenverstellbar", 649.0),
             ("Monitor 27 Zoll", 329.0), ("Dockingstation USB-C", 179.0),
             ("Headset Wireless", 119.0), ("Laptop Pro 14", 1499.0), ("Rollcontainer", 159.0),
             ("Whiteboard 180x120", 239.0), ("Konferenzkamera", 899.0),
             ("Support-Vertrag 12 Monate", 1200.0), ("Installation vor Ort", 95.0),
             ("Schulung (Tag)", 850.0)]
_STAGES = [("New", 1, False, 10.0), ("Qualified", 2, False, 30.0),
           ("Proposition", 3, False, 60.0), ("Won", 4, True, 100.0)]
BASE = dt.datetime(2025, 1, 6, 8, 0, 0)   # the first stamp (naive UTC, as Odoo keeps it)


def _stamp(n: int, same_stamp: int, offset_minutes: int = 0) -> str:
    moment = BASE + dt.timedelta(minutes=offset_minutes + n // max(1, same_stamp))
    return moment.strftime(DATETIME_FORMAT)


def _phone(rng: random.Random, prefix: str) -> str:
    """A number that is valid for its area (phonenumbers accepts it)."""
    length, first = _LOCAL.get(prefix, (8, "23456789"))
    digits = rng.choice(first) + "".join(rng.choice("0123456789") for _ in range(length - 1))
    return f"{prefix} {digits}"


def _slug(text: str) -> str:
    keep = "".join(c.lower() if c.isalnum() else "-" for c in text)
    for a, b in (("ü", "ue"), ("ö", "oe"), ("ä", "ae"), ("é", "e")):
        keep = keep.replace(a, b)
    return "-".join(p for p in keep.split("-") if p)


def seed_database(db: FakeDb, *, companies: int = 120, persons_per_company: int = 2,
                  products: int = 12, same_stamp: int = 7) -> None:
    """Fill ``db`` (drawing from its seeded generator); its clock then moves past the seed."""
    rng = db.rng
    make = db._create_one
    country = {code: make("res.country", {"name": name, "code": code})
               for name, code in _COUNTRIES}
    currency = {c: make("res.currency", {"name": c}) for c in ("EUR", "USD", "GBP", "CHF")}
    make("res.users", {"name": "OdooBot", "login": "__system__"})
    admin = make("res.users", {"name": "Mitchell Admin", "login": "admin"})
    units = make("uom.uom", {"name": "Units"})
    stages = [make("crm.stage", {"name": n, "sequence": s, "is_won": w})
              for n, s, w, _ in _STAGES]
    catalogue = []
    for n in range(products):
        name, price = _PRODUCTS[n % len(_PRODUCTS)]
        suffix = "" if n < len(_PRODUCTS) else f" ({n // len(_PRODUCTS) + 1})"
        catalogue.append(make("product.product", {
            "name": name + suffix, "default_code": f"SKU-{n + 1:04d}", "list_price": price,
            "currency_id": currency["EUR"], "uom_id": units,
            "type": "service" if "Schulung" in name or "Vertrag" in name else "consu",
            "description_sale": f"{name} - Standardausführung"}, _stamp(n, same_stamp)))
    partner_n = order_n = 0
    for n in range(companies):
        code = _COUNTRIES[rng.randrange(len(_COUNTRIES))][1] if n % 3 else "DE"
        city, zip_code, prefix = rng.choice(_CITIES[code])
        name = f"{_WORDS[n % len(_WORDS)]} {_TRADES[(n // len(_WORDS)) % len(_TRADES)]}"
        name += f" {_FORMS[code]}"
        slug = _slug(name.rsplit(" ", 1)[0])
        company = make("res.partner", {
            "name": name, "is_company": True, "ref": f"K{n + 1:05d}",
            "vat": f"{code}{rng.randrange(10**8, 10**9)}" if rng.random() < 0.8 else False,
            "email": f"info@{slug}.example" if rng.random() < 0.9 else False,
            "phone": _phone(rng, prefix),
            "street": f"{rng.choice(['Hauptstraße', 'Rue de la Paix', 'High Street'])} "
                      f"{rng.randrange(1, 200)}",
            "zip": zip_code, "city": city, "country_id": country[code],
            "website": f"https://www.{slug}.example", "customer_rank": 1,
            "lang": "de_DE" if code in ("DE", "AT", "CH") else "en_US"},
            _stamp(partner_n, same_stamp))
        partner_n += 1
        for _ in range(persons_per_company):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            make("res.partner", {
                "name": f"{first} {last}", "is_company": False, "parent_id": company,
                "function": rng.choice(_JOBS), "email": f"{_slug(first)}.{_slug(last)}@"
                f"{slug}.example", "mobile": _phone(rng, prefix),
                "city": city, "zip": zip_code, "country_id": country[code]},
                _stamp(partner_n, same_stamp))
            partner_n += 1
        stage_no = rng.randrange(len(_STAGES))
        lost = stage_no < 3 and rng.random() < 0.1
        product = rng.choice(catalogue)
        make("crm.lead", {
            "name": f"{db.tables['product.product'][product]['name']} für {name}",
            "type": "opportunity", "partner_id": company, "stage_id": stages[stage_no],
            "probability": 0.0 if lost else _STAGES[stage_no][3],
            "expected_revenue": float(rng.randrange(2, 60) * 500),
            "currency_id": currency["EUR"], "user_id": admin, "active": not lost,
            "date_deadline": (BASE.date() + dt.timedelta(days=30 + n)).isoformat()},
            _stamp(n, same_stamp, 60))
        if n % 3 == 0:
            order_n += 1
            lines = [[0, 0, {"product_id": p, "sequence": 10 * (i + 1),
                             "product_uom_qty": float(rng.randrange(1, 12)),
                             "price_unit": db.tables["product.product"][p]["list_price"]}]
                     for i, p in enumerate(rng.sample(catalogue, 2))]
            stamp = _stamp(order_n, same_stamp, 120)
            order = make("sale.order", {"partner_id": company, "currency_id": currency["EUR"],
                                        "date_order": stamp, "order_line": lines,
                                        "client_order_ref": f"PO-{4711 + n}"}, stamp)
            db.tables["sale.order"][order]["state"] = "sale"
            _invoice(db, rng, order, order_n, stamp)
    db.clock = max(dt.datetime.strptime(record["write_date"], DATETIME_FORMAT)
                   for table in db.tables.values() for record in table.values())
    db.end_seed()


def _invoice(db: FakeDb, rng: random.Random, order_id: int, number: int, stamp: str) -> None:
    order = db.tables["sale.order"][order_id]
    lines = [[0, 0, {"product_id": line["product_id"], "sequence": line["sequence"],
                     "quantity": line["product_uom_qty"], "price_unit": line["price_unit"]}]
             for line in (db.tables["sale.order.line"][i] for i in order["order_line"])]
    state = ("paid", "not_paid", "partial", "in_payment")[number % 4]
    total = order["amount_total"]
    residual = {"paid": 0.0, "in_payment": 0.0, "not_paid": total,
                "partial": round(total / 2, 2)}[state]
    day = dt.date.fromisoformat(stamp[:10]) + dt.timedelta(days=3)
    db._create_one("account.move", {
        "name": f"INV/2025/{number:05d}", "move_type": "out_invoice",
        "partner_id": order["partner_id"], "invoice_origin": order["name"],
        "invoice_date": day.isoformat(),
        "invoice_date_due": (day + dt.timedelta(days=30)).isoformat(), "state": "posted",
        "payment_state": state, "currency_id": order["currency_id"],
        "amount_untaxed": order["amount_untaxed"], "amount_tax": order["amount_tax"],
        "amount_total": total, "amount_residual": residual, "invoice_line_ids": lines},
        _stamp(number, 7, 240))

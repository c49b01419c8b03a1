"""Synthetic company accounts with known duplicates (tests and benchmarks/company_accounts.py).

:func:`generate` makes canonical ``Account`` dicts (name, tax id, e-mail,
phone, nested billing address) in which a share of the companies appear twice,
as a CRM would hold them next to the ERP's record: legal forms in other
spellings (``GmbH`` / ``G.m.b.H.`` / ``Gesellschaft mit beschränkter
Haftung``), transliterations (``Müller`` / ``Mueller``, ``ß`` / ``ss``), a
typo, other case, phone numbers in other formats, a changed mailbox and
sometimes a moved address. Distinct companies have distinct names; the truth
is the set of duplicate pairs. ``dominant_city`` puts that share of all
companies in one city (one postcode), the shape that lures unconstrained EM
into "same city = same company".
"""

from __future__ import annotations

import random
from itertools import combinations

SYLLABLES = ["ber", "ka", "lin", "mar", "ten", "sch", "wal", "dor", "hau", "sen", "rei", "ner",
             "bach", "feld", "mann", "ho", "fer", "lan", "gen", "stein", "bur", "kel", "rod",
             "tal", "wig", "zel", "fri", "han", "ost", "wen", "dal", "mey", "rup", "sel"]
SURNAMES = ["Müller", "Schäfer", "Weiß", "Köhler", "Bäcker", "Groß", "Fischer", "Schröder",
            "Krüger", "Böhm", "Jäger", "Lößner", "Fuß", "Hübner", "Grün", "Strauß"]
TRADES = ["Bau", "Logistik", "Handel", "Technik", "Software", "Elektro", "Metallbau",
          "Consulting", "Immobilien", "Transporte", "Maschinenbau", "Druckerei", "Gartenbau",
          "Spedition", "Medien", "Energie", "Holzbau", "Sanitär", "Optik", "Möbel"]
FORMS = {
    "GmbH": ["GmbH", "G.m.b.H.", "Gmbh", "Gesellschaft mit beschränkter Haftung", ""],
    "AG": ["AG", "A.G.", "Aktiengesellschaft", ""],
    "KG": ["KG", "K.G.", "GmbH & Co. KG", ""],
    "Ltd": ["Ltd", "Ltd.", "Limited", ""],
    "": ["", "GmbH"],
}
CITIES = [("Berlin", "10115", "30", "DE"), ("Hamburg", "20095", "40", "DE"),
          ("München", "80331", "89", "DE"), ("Köln", "50667", "221", "DE"),
          ("Düsseldorf", "40213", "211", "DE"), ("Leipzig", "04109", "341", "DE"),
          ("Wien", "1010", "1", "AT"), ("Zürich", "8001", "44", "CH"),
          ("Nürnberg", "90402", "911", "DE"), ("Bremen", "28195", "421", "DE")]
COUNTRY_CODE = {"DE": "49", "AT": "43", "CH": "41"}
TRANSLIT = [("ü", "ue"), ("ö", "oe"), ("ä", "ae"), ("ß", "ss")]


def _words(rng: random.Random) -> list[str]:
    made = {(a + b).title() for a in SYLLABLES for b in SYLLABLES if a != b}
    return SURNAMES * 4 + sorted(made)


def _phone(area: str, local: str, country: str, rng: random.Random) -> str:
    cc = COUNTRY_CODE[country]
    return rng.choice([f"0{area} {local}", f"+{cc} {area} {local}", f"(0{area}) {local[:3]}-"
                       f"{local[3:]}", f"+{cc}-{area}-{local}", f"00{cc} {area} {local}"])


def _typo(text: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(text) - 1)
    return rng.choice([text[:i] + text[i + 1:], text[:i] + text[i + 1] + text[i] + text[i + 2:],
                       text[:i] + rng.choice("aeinrst") + text[i + 1:]])


def _noisy_name(base: str, form: str, rng: random.Random) -> str:
    name = base
    if rng.random() < 0.5:
        for a, b in TRANSLIT:
            name = name.replace(a, b).replace(a.upper(), b.title())
    if rng.random() < 0.25:
        name = _typo(name, rng)
    if rng.random() < 0.15:
        name = name.upper()
    suffix = rng.choice(FORMS[form])
    return f"{name} {suffix}".strip()


def generate(n: int, seed: int, *, dup_share: float = 0.3,
             dominant_city: float | None = None) -> tuple[list[dict], set[frozenset]]:
    """``n`` accounts of which about ``dup_share`` are second records of a company."""
    rng = random.Random(seed)
    words = _words(rng)
    n_companies = int(n / (1 + dup_share))
    names: set[str] = set()
    while len(names) < n_companies:
        pattern = rng.random()
        a, b, trade = rng.choice(words), rng.choice(words), rng.choice(TRADES)
        names.add(f"{a} {trade}" if pattern < 0.6 else f"{a} & {b} {trade}"
                  if pattern < 0.8 else f"{trade} {a}")
    rows: list[dict] = []
    truth: set[frozenset] = set()
    for i, base in enumerate(sorted(names)):
        rng_city = CITIES[0] if dominant_city and rng.random() < dominant_city else rng.choice(
            CITIES)
        city, postcode, area, country = rng_city
        form = rng.choice(list(FORMS))
        local = str(rng.randrange(10**6, 10**8))
        domain = "".join(ch for ch in base.lower() if ch.isalnum())[:20] + ".example"
        row = {"id": f"c{i}", "_source": "erp", "name": f"{base} {form}".strip(),
               "tax_id": f"{country}{rng.randrange(10**8, 10**9)}" if rng.random() < 0.4
               else None,
               "email": f"info@{domain}" if rng.random() < 0.8 else None,
               "phone": _phone(area, local, country, rng) if rng.random() < 0.9 else None,
               "billing_address": {"street": f"{rng.choice(words)}straße {rng.randrange(1, 200)}",
                                   "postal_code": postcode, "city": city, "country": country}}
        rows.append(row)
        if rng.random() >= dup_share:
            continue
        dup = {**row, "id": f"d{i}", "_source": "crm", "name": _noisy_name(base, form, rng),
               "billing_address": dict(row["billing_address"])}
        if row["phone"] and rng.random() < 0.9:
            dup["phone"] = _phone(area, local, country, rng)
        dup["email"] = rng.choice([row["email"], f"sales@{domain}", None])
        if dup["tax_id"] and rng.random() < 0.5:
            dup["tax_id"] = None
        if rng.random() < 0.1:   # moved
            moved = rng.choice(CITIES)
            dup["billing_address"].update(city=moved[0], postal_code=moved[1])
        rows.append(dup)
        truth.add(frozenset((row["id"], dup["id"])))
    rows = rows[:n]
    kept = {row["id"] for row in rows}
    return rows, {pair for pair in truth if pair <= kept}


def predicted_pairs(result) -> set[frozenset]:
    return {frozenset(p) for c in result.clusters for p in combinations(c.record_ids, 2)}

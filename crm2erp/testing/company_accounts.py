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
import re
from collections.abc import Iterator, Sequence
from itertools import combinations

import numpy as np
import phonenumbers

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


# mobile prefixes (after the country code) next to the cities' fixed-line area codes
MOBILE = {"DE": ["151", "160", "170", "176"], "AT": ["664", "676"], "CH": ["76", "79"]}
# national significant number lengths a valid number of the country has
NSN_LENGTH = {"DE": (10, 11), "AT": (9, 10), "CH": (9, 9)}


class _Numbers:
    """Valid, distinct phone numbers and their written forms, fast enough for 1M accounts.

    Validity and formatting depend on the country, the area (or mobile) prefix
    and the length: each such pattern is checked and its national and
    international layouts learned once with phonenumbers, then numbers are
    filled into the layouts as strings.
    """

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()   # E.164 numbers given out: one number, one company
        self.layouts: dict[tuple[str, str, int], tuple[str, str] | None] = {}

    def _layout(self, country: str, prefix: str, length: int) -> tuple[str, str] | None:
        key = (country, prefix, length)
        if key not in self.layouts:
            self.layouts[key] = None
            cc = int(COUNTRY_CODE[country])
            samples = [prefix + str(d) * (length - len(prefix)) for d in range(2, 10)]
            numbers = [phonenumbers.PhoneNumber(country_code=cc, national_number=int(s))
                       for s in samples]
            if all(phonenumbers.is_valid_number(n) for n in numbers):
                fmt = phonenumbers.PhoneNumberFormat
                national = phonenumbers.format_number(numbers[0], fmt.NATIONAL)
                intl = phonenumbers.format_number(numbers[0], fmt.INTERNATIONAL)
                if re.sub(r"\D", "", national) == "0" + samples[0]:
                    self.layouts[key] = (re.sub(r"\d", "{}", national),
                                         re.sub(r"\d", "{}", intl))
        return self.layouts[key]

    def new(self, area: str, country: str) -> tuple[str, str, str]:
        """A fresh number: (E.164, national form, international form)."""
        rng, cc = self.rng, COUNTRY_CODE[country]
        lo, hi = NSN_LENGTH[country]
        for _ in range(100):
            prefix = rng.choice(MOBILE[country]) if rng.random() < 0.2 else area
            length = rng.randint(lo, hi)
            layout = self._layout(country, prefix, length)
            nsn = prefix + str(rng.randint(2, 9)) + "".join(
                rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
            e164 = f"+{cc}{nsn}"
            if layout and e164 not in self.used:
                self.used.add(e164)
                return e164, layout[0].format(*("0" + nsn)), layout[1].format(*(cc + nsn))
        raise RuntimeError(f"no valid {country} number found for area {area}")


def _phone(number: tuple[str, str, str], rng: random.Random) -> str:
    """``number`` written as people write it: national or international, other separators."""
    e164, national, intl = number        # "+493012345678", "030 12345678", "+49 30 12345678"
    cc, _, rest = intl.partition(" ")
    area, _, local = national.partition(" ")
    digits = local.replace(" ", "")
    return rng.choice([
        national, intl, e164,
        f"{cc} (0){rest}",                              # +49 (0)30 12345678
        f"00{cc[1:]} {rest}",                           # 0049 30 12345678
        f"({area}) {digits[:3]}-{digits[3:]}",          # (030) 123-45678
        f"{area}/{digits}",                             # 030/12345678
        f"{cc}-{rest.replace(' ', '-')}",               # +49-30-12345678
        f"{area} {' '.join(digits[i:i + 2] for i in range(0, len(digits), 2))}",
    ])


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
    rows: list[dict] = []
    truth: set[frozenset] = set()
    for row, pair in stream(n, seed, dup_share=dup_share, dominant_city=dominant_city):
        rows.append(row)
        if pair:
            truth.add(pair)
    return rows, truth


def generate_columns(n: int, seed: int, *, dup_share: float = 0.3,
                     ) -> tuple[AccountColumns, set[frozenset]]:
    """:func:`generate`'s accounts held column-wise (no dict per record: 1M fit in memory)."""
    columns = AccountColumns()
    truth: set[frozenset] = set()
    for row, pair in stream(n, seed, dup_share=dup_share):
        columns.append(row)
        if pair:
            truth.add(pair)
    return columns, truth


def stream(n: int, seed: int, *, dup_share: float = 0.3, dominant_city: float | None = None,
           ) -> Iterator[tuple[dict, frozenset | None]]:
    """:func:`generate`'s ``n`` accounts one at a time, each with its true pair (a duplicate's
    ids) or None."""
    rng = random.Random(seed)
    words = _words(rng)
    n_companies = int(n / (1 + dup_share))
    names: set[str] = set()
    while len(names) < n_companies:
        pattern = rng.random()
        a, b, trade = rng.choice(words), rng.choice(words), rng.choice(TRADES)
        names.add(f"{a} {trade}" if pattern < 0.6 else f"{a} & {b} {trade}"
                  if pattern < 0.8 else f"{trade} {a}")
    numbers = _Numbers(rng)
    emitted = 0
    for i, base in enumerate(sorted(names)):
        rng_city = CITIES[0] if dominant_city and rng.random() < dominant_city else rng.choice(
            CITIES)
        city, postcode, area, country = rng_city
        form = rng.choice(list(FORMS))
        number = numbers.new(area, country) if rng.random() < 0.9 else None
        domain = "".join(ch for ch in base.lower() if ch.isalnum())[:20] + ".example"
        row = {"id": f"c{i}", "_source": "erp", "name": f"{base} {form}".strip(),
               "tax_id": f"{country}{rng.randrange(10**8, 10**9)}" if rng.random() < 0.4
               else None,
               "email": f"info@{domain}" if rng.random() < 0.8 else None,
               "phone": _phone(number, rng) if number else None,
               "billing_address": {"street": f"{rng.choice(words)}straße {rng.randrange(1, 200)}",
                                   "postal_code": postcode, "city": city, "country": country}}
        if emitted == n:
            return
        emitted += 1
        yield row, None
        if rng.random() >= dup_share:
            continue
        dup = {**row, "id": f"d{i}", "_source": "crm", "name": _noisy_name(base, form, rng),
               "billing_address": dict(row["billing_address"])}
        if number and rng.random() < 0.9:
            dup["phone"] = _phone(number, rng)
        dup["email"] = rng.choice([row["email"], f"sales@{domain}", None])
        if dup["tax_id"] and rng.random() < 0.5:
            dup["tax_id"] = None
        if rng.random() < 0.1:   # moved: another street, perhaps another city
            moved = rng.choice(CITIES)
            dup["billing_address"].update(
                street=f"{rng.choice(words)}straße {rng.randrange(1, 200)}", city=moved[0],
                postal_code=moved[1])
        if emitted == n:
            return
        emitted += 1
        yield dup, frozenset((row["id"], dup["id"]))


_FIELDS = ("id", "_source", "name", "tax_id", "email", "phone")
_ADDRESS = ("street", "postal_code", "city", "country")


class AccountColumns(Sequence):
    """Generated accounts stored as one numpy string array per field (UTF-8, no Python
    string per value: a million accounts take ~200 MB, not ~650); ``columns[i]`` builds
    record ``i``. Rows are buffered and packed ``_PACK`` at a time while streaming."""

    _PACK = 65_536
    _STRING = np.dtypes.StringDType(na_object=None)

    def __init__(self) -> None:
        self._packed: dict[str, list[np.ndarray]] = {f: [] for f in _FIELDS + _ADDRESS}
        self._buffer: dict[str, list] = {f: [] for f in _FIELDS + _ADDRESS}
        self._length = 0

    def append(self, row: dict) -> None:
        for f in _FIELDS:
            self._buffer[f].append(row[f])
        for f in _ADDRESS:
            self._buffer[f].append(row["billing_address"][f])
        self._length += 1
        if len(self._buffer["id"]) >= self._PACK:
            self._pack()

    def _pack(self) -> None:
        for f, values in self._buffer.items():
            if values:
                self._packed[f].append(np.array(values, dtype=self._STRING))
                values.clear()

    def _column(self, name: str) -> np.ndarray:
        """The field's array (its packs joined once, at the first read)."""
        self._pack()
        packs = self._packed[name]
        if len(packs) != 1:
            packs[:] = [np.concatenate(packs) if packs else np.empty(0, self._STRING)]
        return packs[0]

    def __len__(self) -> int:
        return self._length

    def values_of(self, path: str) -> list:
        """One field's values for all records (``billing_address.city``: the city column);
        a field no generated account has is None everywhere."""
        name = path.removeprefix("billing_address.")
        if name in _ADDRESS and name != path or name in _FIELDS and name == path:
            return self._column(name).tolist()
        return [None] * len(self)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        row = {f: self._column(f)[i] for f in _FIELDS}
        row["billing_address"] = {f: self._column(f)[i] for f in _ADDRESS}
        return row


def predicted_pairs(result) -> set[frozenset]:
    return {frozenset(p) for c in result.clusters for p in combinations(c.record_ids, 2)}

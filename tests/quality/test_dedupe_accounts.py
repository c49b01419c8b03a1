"""The account preset on synthetic CRM/ERP accounts (nested addresses, VAT ids, phones)."""

import random

from crm2erp.quality.dedupe import Matcher, preset

WORDS = ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka", "tyrell",
         "cyberdyne", "soylent", "vandelay", "gringotts", "oscorp", "massive", "dynamic",
         "pioneer", "nordic", "alpine", "coastal", "summit", "harbor", "granite", "silver"]
KINDS = ["trading", "logistics", "software", "foods", "consulting", "media", "energy", "bau"]
CITIES = [("Berlin", "10115", "30"), ("Hamburg", "20095", "40"), ("München", "80331", "89"),
          ("Köln", "50667", "221"), ("Leipzig", "04109", "341")]
FORMS = ["GmbH", "AG", "Ltd", "SE", ""]


def make_accounts(seed=11, n=300, dupes=80):
    rng = random.Random(seed)
    base = []
    names = rng.sample([f"{a} {b} {k}".title() for a in WORDS for b in WORDS if a != b
                        for k in KINDS], n)  # distinct companies have distinct names
    for i, name in enumerate(names):
        city, zipcode, area = rng.choice(CITIES)
        domain = name.lower().replace(" ", "") + ".de"
        base.append({"id": f"crm-{i}", "_source": "crm", "name": f"{name} {rng.choice(FORMS)}",
                     "tax_id": f"DE{rng.randrange(10**8, 10**9)}" if rng.random() < 0.5 else None,
                     "email": f"info@{domain}", "phone": f"0{area} {rng.randrange(10**6, 10**7)}",
                     "billing_address": {"city": city, "postal_code": zipcode}})
    rows, true = list(base), set()
    for j, src in enumerate(rng.sample(base, dupes)):
        dup = {**src, "id": f"erp-{j}", "_source": "erp",
               "billing_address": dict(src["billing_address"])}
        name = src["name"].rsplit(" ", 1)[0] if src["name"].endswith(tuple(FORMS[:-1])) else src[
            "name"]
        dup["name"] = rng.choice([name.upper(), name + " Limited", name.replace("a", "e", 1)])
        dup["phone"] = "+49 " + src["phone"][1:].replace(" ", "-")
        dup["email"] = rng.choice([src["email"].replace("info@", "sales@"), None])
        if dup["tax_id"]:
            dup["tax_id"] = dup["tax_id"][:2].lower() + " " + dup["tax_id"][2:]
        rows.append(dup)
        true.add(frozenset((src["id"], dup["id"])))
    return rows, true


def test_account_preset_finds_the_duplicates():
    rows, true = make_accounts()
    result = Matcher(preset("account")).dedupe(rows)
    predicted = {frozenset((a, b)) for c in result.clusters for a in c.record_ids
                 for b in c.record_ids if a < b}
    tp = len(predicted & true)
    assert tp / len(true) >= 0.9, result.counts()
    assert tp / max(len(predicted), 1) >= 0.9
    by_rule = [p for p in result.merges() if p.reason == "rule:tax_id"]
    assert by_rule and all(frozenset((p.left_id, p.right_id)) in true for p in by_rule)
    golden = result.golden_records()
    some = next(g for g in golden.values() if len(g.source_ids) == 2)
    assert some.provenance["name"].startswith("erp-")  # source_priority: erp first

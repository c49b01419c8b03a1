"""Golden records: each survivorship rule, tie-breaking and provenance."""

import datetime as dt

from crm2erp.quality.dedupe import Matcher, SurvivorshipConfig, parse_config, survive

RECORDS = [
    {"id": "crm-1", "_source": "crm", "updated_at": "2024-03-01T10:00:00",
     "name": "ACME", "phone": "111", "notes": "short", "city": "Berlin", "fax": None},
    {"id": "erp-7", "_source": "erp", "updated_at": dt.datetime(2024, 1, 1),
     "name": "Acme GmbH", "phone": None, "notes": "a much longer note", "city": "Berlin",
     "fax": "  "},
    {"id": "web-3", "_source": "web", "updated_at": "2024-05-01",
     "name": "acme", "phone": "333", "notes": None, "city": "Bonn", "fax": None},
]


def test_each_rule_and_its_provenance():
    config = SurvivorshipConfig(
        default="most_complete", source_priority=["erp", "crm"],
        fields={"name": "source_priority", "phone": "most_recent", "notes": "longest",
                "city": "most_frequent"})
    golden = survive(RECORDS, config)
    assert golden.values["name"] == "Acme GmbH" and golden.provenance["name"] == "erp-7"
    assert golden.values["phone"] == "333" and golden.provenance["phone"] == "web-3"
    assert golden.values["notes"] == "a much longer note"
    assert golden.values["city"] == "Berlin" and golden.provenance["city"] in ("crm-1", "erp-7")
    # nothing but blanks: null, no provenance
    assert golden.values["fax"] is None and golden.provenance["fax"] is None
    assert golden.source_ids == ["crm-1", "erp-7", "web-3"]
    assert "id" not in golden.values


def test_most_complete_takes_the_fullest_record_then_falls_back():
    golden = survive(RECORDS, SurvivorshipConfig())
    # crm-1 has 6 non-null fields (the fullest); notes exists there too
    assert golden.provenance["name"] == "crm-1" and golden.values["notes"] == "short"
    fuller = [{"id": 1, "a": "x", "b": "y", "c": None}, {"id": 2, "a": "z", "c": "w"}]
    golden = survive(fuller, SurvivorshipConfig())
    assert golden.values == {"a": "x", "b": "y", "c": "w"}
    assert golden.provenance == {"a": 1, "b": 1, "c": 2}


def test_ties_break_by_recency_then_id_not_input_order():
    a = {"id": "b", "v": "first", "updated_at": "2024-01-01"}
    b = {"id": "a", "v": "second", "updated_at": "2024-01-01"}
    cfg = SurvivorshipConfig(default="most_frequent")
    assert survive([a, b], cfg).values["v"] == survive([b, a], cfg).values["v"] == "second"
    newer = dict(a, updated_at="2024-02-01")
    assert survive([newer, b], cfg).values["v"] == "first"
    # unknown sources rank after listed ones
    cfg = SurvivorshipConfig(default="source_priority", source_priority=["erp"])
    rows = [{"id": 1, "_source": "zzz", "v": "z"}, {"id": 2, "_source": "erp", "v": "e"}]
    assert survive(rows, cfg).provenance["v"] == 2


def test_golden_records_from_a_match_result():
    config = parse_config("""
entity: account
blocking: [[vat]]
deterministic: [{name: vat, fields: [{field: vat, transform: tax_id}]}]
comparisons: [{field: name, method: exact, m: [0.9, 0.1], u: [0.01, 0.99]}]
lambda: 0.01
survivorship: {source_priority: [erp], fields: {name: source_priority}}
""")
    rows = [{"id": "c1", "_source": "crm", "vat": "DE 1", "name": "Acme", "city": "Köln"},
            {"id": "e1", "_source": "erp", "vat": "de1", "name": "ACME AG", "city": None},
            {"id": "x", "_source": "crm", "vat": "DE2", "name": "Other"}]
    golden = Matcher(config).dedupe(rows).golden_records()
    assert list(golden) == ["c1"]
    record = golden["c1"]
    assert record.values["name"] == "ACME AG" and record.provenance["name"] == "e1"
    assert record.values["city"] == "Köln" and record.provenance["city"] == "c1"


def test_identifiers_are_never_overwritten_and_conflicts_are_reported():
    erp = {"id": "e1", "_source": "erp", "tax_id": "DE811111111", "customer_number": "K-1",
           "name": "Nordwind Handel GmbH", "updated_at": "2026-01-01T00:00:00"}
    crm = {"id": "c1", "_source": "crm", "tax_id": "DE000000000", "customer_number": None,
           "name": "Nordwind Handels AG", "phone": "+4930", "updated_at": "2026-06-01T00:00:00"}
    config = SurvivorshipConfig(target_source="erp", fields={"name": "target"})
    golden = survive([crm, erp], config)
    assert golden.values["tax_id"] == "DE811111111" and golden.provenance["tax_id"] == "e1"
    assert golden.values["customer_number"] == "K-1"
    assert golden.values["name"] == "Nordwind Handel GmbH"      # prefer the target: per field
    assert golden.values["phone"] == "+4930"                      # only the CRM has one
    assert golden.conflicts == {"tax_id": ["DE000000000", "DE811111111"]}
    # without a target record the earliest record's identifier stays
    golden = survive([crm, {**erp, "_source": "crm"}], SurvivorshipConfig())
    assert golden.values["tax_id"] == "DE811111111"
    # a field rule overrides the protection when a project wants it
    golden = survive([crm, erp], SurvivorshipConfig(fields={"tax_id": "most_recent"}))
    assert golden.values["tax_id"] == "DE000000000"


def test_an_identifier_spelt_two_ways_is_no_conflict():
    a = {"id": "a", "_source": "crm", "tax_id": "DE 123 456 789", "customer_number": "k-1"}
    b = {"id": "b", "_source": "erp", "tax_id": "de123456789", "customer_number": "K1"}
    assert survive([a, b], SurvivorshipConfig(target_source="erp")).conflicts == {}
    c = dict(b, id="c", tax_id="DE123456780")
    assert survive([a, c], SurvivorshipConfig(target_source="erp")).conflicts == {
        "tax_id": ["DE 123 456 789", "DE123456780"]}

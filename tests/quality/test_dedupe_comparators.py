"""Transforms, comparison levels and configuration validation."""

import numpy as np
import pytest

from crm2erp.errors import ConfigError
from crm2erp.quality.dedupe import Comparison, parse_config, preset
from crm2erp.quality.dedupe.comparators import compare, prepare
from crm2erp.quality.dedupe.transforms import apply, get_path


def levels(comparison: Comparison, pairs: list[tuple]) -> tuple[list[int], np.ndarray]:
    values = [v for pair in pairs for v in pair]
    prepared = prepare(comparison, apply(values, comparison.transforms))
    a = np.arange(0, len(values), 2)
    lv, scores = compare(comparison, prepared, a, a + 1)
    return lv.tolist(), scores


def test_transforms():
    assert apply(["Smith", "Smyth", None, "  ", float("nan")], ["soundex"]) == [
        "S530", "S530", None, None, None]
    assert apply(["Deakin"], ["lower", "first:3"]) == ["dea"]
    assert apply(["+49 (30) 1234-567"], ["digits"]) == ["49301234567"]
    assert apply(["030 1234567"], ["phone:DE"]) == ["+49301234567"]
    assert apply(["Jo@Example.COM"], ["email_domain"]) == ["example.com"]
    assert apply(["de 123.456.789"], ["tax_id"]) == ["DE123456789"]
    assert apply(["Müller & Söhne GmbH"], ["company"]) == ["mueller soehne"]
    assert apply([19600210, "19600210"], ["date"]) == ["1960-02-10", "1960-02-10"]
    assert apply([1, 1.0, True], []) == ["1", "1.0", "True"]


def test_get_path_follows_nested_dicts():
    record = {"billing_address": {"city": "Berlin"}, "a.b": 1}
    assert get_path(record, "billing_address.city") == "Berlin"
    assert get_path(record, "a.b") == 1
    assert get_path(record, "billing_address.zip") is None
    assert get_path({"billing_address": None}, "billing_address.city") is None


def test_jaro_winkler_levels_and_null():
    comp = Comparison(field="name", method="jaro_winkler", thresholds=[0.92, 0.8])
    assert comp.level_labels == ["exact", "jaro_winkler>=0.92", "jaro_winkler>=0.8", "else"]
    lv, scores = levels(comp, [("martha", "martha"), ("martha", "marhta"),
                               ("dwayne", "duane"), ("smith", "zhou"), ("x", None)])
    assert lv == [0, 1, 2, 3, -1]
    assert scores[0] == 1.0 and 0.92 <= scores[1] < 1 and np.isnan(scores[4])


def test_edit_distance_levels():
    comp = Comparison(field="dob", method="levenshtein", thresholds=[1, 2])
    lv, scores = levels(comp, [("19600210", "19600210"), ("19600210", "19600201"),
                               ("19600210", "19610201"), ("19600210", "20001111")])
    assert lv == [0, 2, 3, 3]
    assert scores.tolist()[:2] == [0.0, 2.0]
    dl = Comparison(field="dob", method="damerau_levenshtein", thresholds=[1])
    assert levels(dl, [("19600210", "19600201")])[0] == [1]  # one transposition


def test_token_set_ignores_word_order():
    comp = Comparison(field="name", method="token_set", thresholds=[0.9], exact_level=False)
    lv, _ = levels(comp, [("acme trading ltd", "ltd acme trading"), ("acme", "globex")])
    assert lv == [0, 1]


def test_phonetic_email_phone_tax_id():
    phon = Comparison(field="n", method="phonetic", phonetic="soundex")
    assert levels(phon, [("smith", "smith"), ("smith", "smyth"), ("smith", "jones")])[0] == [
        0, 1, 2]
    mail = Comparison(field="e", method="email_domain")
    assert levels(mail, [("A@x.com", "a@x.com"), ("a@x.com", "b@x.com"),
                         ("a@x.com", "a@y.com"), ("no-at", "a@y.com")])[0] == [0, 1, 2, 2]
    phone = Comparison(field="p", method="phone", thresholds=[7], default_region="DE")
    assert levels(phone, [("030 1234567", "+49 30 1234567"), ("+49 40 1234567", "030 1234567"),
                          ("030 1234567", "030 7654321")])[0] == [0, 1, 2]
    tax = Comparison(field="t", method="tax_id")
    assert levels(tax, [("DE 123 456 789", "de123456789"), ("DE123", "DE124")])[0] == [0, 1]


def test_numeric_and_date_closeness():
    num = Comparison(field="v", method="numeric", thresholds=[1, 10])
    lv, scores = levels(num, [(100, "100"), (100, 100.5), (100, 108), (100, 200), ("x", 1)])
    assert lv == [0, 1, 2, 3, -1]
    assert scores[2] == 8
    rel = Comparison(field="v", method="numeric", thresholds=[0.05], relative=True)
    assert levels(rel, [(100, 104), (100, 120)])[0] == [1, 2]
    day = Comparison(field="d", method="date", thresholds=[1, 31])
    assert levels(day, [("2024-01-01", "20240101"), ("2024-01-01", "2024-01-02"),
                        ("2024-01-01", "2024-01-20"), ("2024-01-01", "2025-01-01")])[0] == [
        0, 1, 2, 3]


def test_fixed_parameters_need_one_value_per_level():
    with pytest.raises(ValueError, match="m needs 3 values"):
        Comparison(field="x", method="jaro_winkler", thresholds=[0.9], m=[0.9, 0.1])


YAML_WITH_ERRORS = """\
entity: person
blocking:
  - [{field: surname, transform: soundx}]
comparisons:
  - {field: surname, method: jaro_winkler, thresholds: [0.8, 0.9]}
  - {field: city, method: exact, colour: blue}
"""


def test_config_errors_name_line_and_fix():
    with pytest.raises(ConfigError) as info:
        parse_config(YAML_WITH_ERRORS, "accounts.yaml")
    issues = {issue.line: issue.message for issue in info.value.issues}
    assert "unknown transform 'soundx'" in issues[3]
    assert "strictly descending" in issues[5]
    assert "colour" in issues[6]
    assert all(i.file == "accounts.yaml" for i in info.value.issues)


def test_config_rejects_bad_yaml_and_unknown_preset():
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config("entity: [unclosed", "x.yaml")
    with pytest.raises(ConfigError, match="unknown matching preset"):
        preset("spaceship")


def test_presets_load():
    assert preset("person").entity == "person"
    account = preset("account")
    assert [rule.name for rule in account.deterministic] == ["tax_id", "customer_number"]

"""The emulators' one OData ``$filter`` parser (crm2erp.emulators.kernel.odata), V2 and V4 literals,
with the grammar the vendors document: SAP Gateway (OData V2 URI conventions 4.5) and the
Dataverse Web API (OData V4 ``$filter``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm2erp.emulators.dynamics.odata import ODataError
from crm2erp.emulators.dynamics.odata import parse_filter as dataverse_filter
from crm2erp.emulators.kernel.odata import V2, V4, FilterError, parse_filter

UTC = dt.UTC
ROW = {"Name": "O'Neil", "Qty": Decimal("10"), "Count": 3, "Flag": True, "Gone": None,
       "When": dt.datetime(2024, 1, 12, 8, 3, 4, tzinfo=UTC), "Day": dt.date(2024, 1, 12),
       "At": dt.time(8, 3, 4), "Id": "5d1e3f4a-0000-4000-8000-000000000001"}
FIELDS = set(ROW)


@pytest.mark.parametrize(("text", "expected"), [
    ("Qty eq 10", True), ("Qty ne 10", False), ("Qty gt 9.5", True), ("Qty ge 10", True),
    ("Qty lt 10", False), ("Qty le 10m", True), ("Count eq 3L", True), ("Count gt 2.5d", True),
    ("Name eq 'O''Neil'", True), ("Name eq 'o''neil'", False),       # V2: case counts
    ("Flag eq true", True), ("Gone eq null", True), ("Gone ne null", False),
    ("Gone lt 5", False), ("Gone gt 5", False),                       # null never orders
    ("When eq datetime'2024-01-12T08:03:04'", True),                   # no zone: UTC
    ("When gt datetimeoffset'2024-01-12T09:00:00+02:00'", True),
    ("At ge time'PT08H03M04S'", True), ("At gt time'PT08H03M04S'", False),
    ("Id eq guid'5d1e3f4a-0000-4000-8000-000000000001'", True),
    ("Qty eq Count", False), ("Qty gt Count", True),                   # property both sides
    ("Qty eq 10 and Flag eq false", False), ("Qty eq 1 or Flag eq true", True),
    ("not Qty eq 1", True), ("not (Qty eq 10 or Flag eq false)", False),
    ("(Qty eq 1 or Qty eq 10) and (Name eq 'x' or Count eq 3)", True),
    ("Qty eq 1 or Qty eq 10 and Count eq 4", False),                   # and binds tighter
    ("Name gt 5", False),                                               # not comparable
])
def test_v2_grammar(text, expected):
    assert parse_filter(text, FIELDS, V2)(ROW) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("When ge 2024-01-12T08:03:04Z", True), ("When gt 2024-01-12T09:00:00+02:00", True),
    ("When lt 2024-01-12T08:03Z", False), ("Day eq 2024-01-12", True),
    ("Id eq 5D1E3F4A-0000-4000-8000-000000000001", True),             # GUIDs normalised
    ("Qty ge -1.5 and not Gone ne null", True), ("Name eq 'o''neil'", False),
])
def test_v4_literals(text, expected):
    assert parse_filter(text, FIELDS, V4)(ROW) is expected


@pytest.mark.parametrize("text", [
    "Qty eq", "Qty 10", "(Qty eq 10", "Qty eq 10)", "Qty eq 10 and", "eq 10", "Qty eq 10 Flag",
    "Qty eq datetime'not a date'", "At eq time'8 o''clock'", "Qty eq 'open", "Qty eq #",
])
def test_malformed_filters_are_refused(text):
    with pytest.raises(FilterError):
        parse_filter(text, FIELDS, V2)


def test_an_unknown_property_is_named():
    with pytest.raises(FilterError, match="Property Nope not found") as err:
        parse_filter("Nope eq 1 or Qty eq 1", FIELDS, V2)
    assert err.value.unknown == "Nope"
    assert parse_filter("Nope eq null", None, V2)(ROW)       # no field list: anything goes


def test_v2_and_v4_literals_stay_apart():
    with pytest.raises(FilterError):
        parse_filter("Day eq 2024-01-12", FIELDS, V2)        # bare dates are V4 only
    with pytest.raises(FilterError):
        parse_filter("When eq datetime'2024-01-12T08:03:04'", FIELDS, V4)


def test_dataverse_compares_strings_without_case_and_answers_its_error_codes():
    record = {"name": "O'Neil", "revenue": 7, "statecode": 0}
    assert dataverse_filter("name eq 'o''neil' and revenue gt 6.5", set(record))(record)
    with pytest.raises(ODataError, match="Could not find a property named 'nope'") as err:
        dataverse_filter("nope eq 1", set(record))
    assert err.value.code == "0x80060888"
    with pytest.raises(ODataError, match="Syntax error"):
        dataverse_filter("name eq", set(record))


@given(st.lists(st.one_of(st.none(), st.integers(-50, 50)), max_size=20), st.integers(-50, 50))
def test_comparisons_agree_with_python(values, bound):
    rows = [{"n": v} for v in values]
    for op, check in {"eq": lambda v: v == bound, "ne": lambda v: v != bound,
                      "gt": lambda v: v is not None and v > bound,
                      "le": lambda v: v is not None and v <= bound}.items():
        keep = parse_filter(f"n {op} {bound}", {"n"}, V4)
        assert [r["n"] for r in rows if keep(r)] == [v for v in values if check(v)]
        negated = parse_filter(f"not n {op} {bound}", {"n"}, V2)
        assert [r["n"] for r in rows if negated(r)] == [v for v in values if not check(v)]

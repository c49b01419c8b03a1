"""Every built-in transform: what it does, and how it fails."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from crm2erp.errors import RecordError
from tests.mapping.helpers import mapping, one

UTC = dt.UTC


@pytest.mark.parametrize(
    ("transforms", "value", "expected"),
    [
        (["strip"], "  a b  ", "a b"),
        (["lower"], "AbC", "abc"),
        (["upper"], "AbC", "ABC"),
        (["title"], "hello world", "Hello World"),
        (["collapse_spaces"], "  a \t  b\n c ", "a b c"),
        (["split"], "a, b,,c", ["a", "b", "c"]),
        ([{"split": ";"}], "a;b", ["a", "b"]),
        ([{"join": "-"}], ["a", None, "b"], "a-b"),
        (["join"], [None, ""], None),
        (["concat"], ["a", "b"], "ab"),
        ([{"concat": "/"}], ["a", "b"], "a/b"),
        (["coalesce"], [None, " ", "x", "y"], "x"),
        (["coalesce"], [None, ""], None),
        ([{"default": "n/a"}], None, "n/a"),
        ([{"default": "n/a"}], "", "n/a"),
        ([{"default": "n/a"}], "x", "x"),
        ([{"constant": 7}], "anything", 7),
        ([{"constant": 7}], None, 7),
        ([{"replace": {"old": "-", "new": ""}}], "12-34", "1234"),
        ([{"replace": {"old": r"\D", "regex": True}}], "+49 (30) 1", "49301"),
        ([{"truncate": 3}], "abcdef", "abc"),
        ([{"prefix": "C-"}], 42, "C-42"),
        ([{"suffix": "!"}], "hi", "hi!"),
        (["decimal"], "12.50", Decimal("12.50")),
        ([{"decimal": 2}], "2.345", Decimal("2.35")),
        ([{"decimal": {"places": 2, "decimal_sep": ","}}], "1.234,565", Decimal("1234.57")),
        (["decimal"], 0.1, Decimal("0.1")),
        (["decimal"], "1,234.5", Decimal("1234.5")),
        (["int"], "12", 12),
        (["int"], 12.0, 12),
        (["bool"], "Yes", True),
        (["bool"], "n", False),
        (["bool"], "0", False),
        (["bool"], 1, True),
        (["bool"], "", None),
        ([{"round": 1}], "2.25", Decimal("2.3")),
        (["round"], Decimal("2.5"), Decimal("3")),
        ([{"multiply": 100}], "1.5", Decimal("150.0")),
        ([{"multiply": "1.19"}], 100, Decimal("119.00")),
        (["abs"], -3, 3),
        (["abs"], "-2.5", Decimal("2.5")),
        (["negate"], Decimal("4"), Decimal("-4")),
        (["date"], "2024-05-01", dt.date(2024, 5, 1)),
        (["date"], "2024-05-01T10:00:00", dt.date(2024, 5, 1)),
        ([{"date": "%d.%m.%Y"}], "01.05.2024", dt.date(2024, 5, 1)),
        (["datetime"], "2024-05-01T10:00:00Z", dt.datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ([{"datetime": {"tz": "Europe/Berlin"}}], "2024-05-01 10:00",
         dt.datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ([{"datetime": {"format": "%d.%m.%Y %H:%M", "tz": "Europe/Berlin"}}],
         "01.01.2024 10:00", dt.datetime(2024, 1, 1, 9, tzinfo=UTC)),
        (["datetime"], 1700000000, dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (["datetime"], "1700000000.5",
         dt.datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)),
        ([{"datetime": {"unit": "ms"}}], "1700000000000",
         dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (["format_date"], dt.date(2024, 5, 1), "2024-05-01"),
        ([{"format_date": {"format": "%d.%m.%Y %H:%M", "tz": "Europe/Berlin"}}],
         dt.datetime(2024, 5, 1, 22, 30, tzinfo=UTC), "02.05.2024 00:30"),
        ([{"format_date": "%Y%m%d"}], "2024-05-01", "20240501"),
        (["country"], "Deutschland", "DE"),
        (["country"], "UK", "GB"),
        (["country"], "U.S.A.", "US"),
        (["country"], "deu", "DE"),
        (["country"], "fr", "FR"),
        (["country"], "Netherlands", "NL"),
        (["country"], "NO", "NO"),
        ([{"phone": "DE"}], "030 1234567", "+49301234567"),
        (["phone"], "+1 (212) 555-0123", "+12125550123"),
        (["email"], "  Bob.Smith@Example.COM ", "bob.smith@example.com"),
        ([{"value_map": {"A": "x"}}], "A", "x"),
        ([{"value_map": {"map": {"a": "x"}, "case_insensitive": True}}], "A", "x"),
        ([{"value_map": {"map": {1: "one"}}}], "1", "one"),
        ([{"value_map": {"map": {"a": "x"}, "on_missing": "keep"}}], "b", "b"),
        ([{"value_map": {"map": {"a": "x"}, "on_missing": "default", "default": "z"}}],
         "b", "z"),
        (["strip", "upper", {"prefix": "X"}], " a ", "XA"),
    ],
)
def test_transform(transforms, value, expected):
    result = one(transforms, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "transforms",
    [["strip"], ["decimal"], ["int"], ["bool"], ["date"], ["datetime"], ["country"],
     ["email"], [{"phone": "DE"}], [{"value_map": {"a": "b"}}], [{"xref": "Account"}],
     ["format_date"], ["abs"], [{"round": 2}], [{"multiply": 2}], [{"truncate": 2}]],
)
def test_transforms_are_null_safe(transforms):
    assert one(transforms, None) is None


@pytest.mark.parametrize(
    ("transforms", "value", "fragment"),
    [
        (["decimal"], "abc", "'abc' is not a number"),
        (["decimal"], "1,5", "'1,5' is not a number"),
        (["decimal"], True, "boolean"),
        (["int"], "12.5", "'12.5' is not a whole number"),
        (["bool"], "maybe", "'maybe' is not a yes/no value"),
        (["date"], "2024-13-01", "is not a date in ISO format"),
        ([{"date": "%d.%m.%Y"}], "2024-01-01", "format '%d.%m.%Y'"),
        (["datetime"], "yesterday", "'yesterday' is not a timestamp"),
        (["format_date"], "soon", "'soon' is not an ISO date"),
        (["country"], "Atlantis", "'Atlantis' is not a known country"),
        ([{"phone": "DE"}], "12", "'12' is not a valid phone number"),
        (["phone"], "030 1234567", "no region"),
        (["email"], "bob@@x", "'bob@@x' is not a valid e-mail address"),
        ([{"value_map": {"a": "x"}}], "b", "'b' is not in the value map"),
        (["abs"], "x", "'x' is not a number"),
    ],
)
def test_transform_failures_are_record_errors(transforms, value, fragment):
    with pytest.raises(RecordError) as info:
        one(transforms, value)
    message = str(info.value)
    assert message.startswith("mapping 't', field 'out': ")
    assert fragment in message
    assert info.value.field == "out"
    assert info.value.stage == "map"


def test_phone_region_from_goes_through_country():
    m = mapping({"phone": {"from": "phone",
                           "transforms": [{"phone": {"region_from": "land"}}]}})
    assert m.apply({"phone": "0171 1234567", "land": "Deutschland"}) == {"phone": "+491711234567"}
    assert m.apply({"phone": "020 7946 0018", "land": "UK"}) == {"phone": "+442079460018"}
    with pytest.raises(RecordError, match="no region"):
        m.apply({"phone": "0171 1234567", "land": None})


def test_unexpected_exception_becomes_record_error():
    from crm2erp.mapping.registry import _REGISTRY, transform

    @transform("explode_for_test")
    def explode(value, args, ctx):
        raise RuntimeError("kaboom")

    try:
        with pytest.raises(RecordError, match=r"transform 'explode_for_test' failed on 'v'"):
            one(["explode_for_test"], "v")
    finally:
        _REGISTRY.pop("explode_for_test")


def test_transform_sees_source_and_output():
    from crm2erp.mapping.registry import _REGISTRY, transform

    seen = {}

    @transform("peek_for_test")
    def peek(value, args, ctx):
        seen.update(source=dict(ctx.source), output=dict(ctx.output), field=ctx.field,
                    system=ctx.system, direction=ctx.direction, mapping=ctx.mapping)
        return value

    try:
        m = mapping({"a": {"from": "x"}, "b": {"from": "y", "transforms": ["peek_for_test"]}},
                    direction="outbound", system="erp")
        m.apply({"x": 1, "y": 2})
    finally:
        _REGISTRY.pop("peek_for_test")
    assert seen == {"source": {"x": 1, "y": 2}, "output": {"a": 1}, "field": "b",
                    "system": "erp", "direction": "outbound", "mapping": "t"}

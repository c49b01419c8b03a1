"""Reconcile compares values normalised the same way on both sides."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from crm2erp.quality.reconcile import _differences, normalise, values_equal


def test_formatting_is_not_a_difference():
    assert values_equal("+49 30 1234567", "+49301234567")          # Tryton's phone format
    assert values_equal("+34 810 12 34 13", "+34810123413")
    assert values_equal("", None) and values_equal(None, "   ")
    assert values_equal("  Acme   GmbH ", "Acme GmbH")
    assert values_equal("10.50", Decimal("10.5"))


def test_real_changes_are_differences():
    assert not values_equal("+49301234567", "+49301234568")
    assert not values_equal("Acme GmbH", "Acme AG")
    assert not values_equal("a@example.org", None)
    assert not values_equal("10115", "10117")


def test_nested_fields_are_compared_one_by_one():
    expected = {"name": "Acme", "billing_address": {"street": "Weg 1", "city": "Berlin",
                                                    "country": "DE"},
                "shipping_address": {"street": None, "city": None}}
    actual = {"name": "Acme", "billing_address": {"street": "Weg 1 ", "city": "Potsdam",
                                                  "country": "DE", "invoice": True},
              "shipping_address": None}
    assert _differences(expected, actual) == [
        {"field": "billing_address.city", "source": "Berlin", "target": "Potsdam"}]
    assert _differences({"phone": "+49301234567", "mode": "all"}, {"phone": "+49 30 1234567"},
                        frozenset({"mode"})) == []


@given(st.text())
def test_normalise_is_idempotent_and_symmetric(text):
    once = normalise(text)
    assert normalise(once) == once
    assert values_equal(text, once) and values_equal(once, text)

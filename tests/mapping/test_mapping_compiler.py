"""Compiled mappings: targets, conditions, each, xref, defaults, explain."""

from __future__ import annotations

import gc
from decimal import Decimal

import pytest

from crm2erp.errors import ConfigError, ParentMissingError, RecordError
from crm2erp.mapping import DictResolver, MappingSpec, compile_mapping
from tests.mapping.helpers import mapping


def test_nested_targets_constants_and_multi_source():
    m = mapping({
        "billing_address.city": {"from": "city"},
        "billing_address.zip": {"from": "addr.zip"},
        "currency": {"value": "EUR"},
        "tags": {"value": ["a"]},
        "name": {"from": ["first", "last"], "transforms": ["join"]},
    })
    out = m.apply({"city": "Berlin", "addr": {"zip": "10115"}, "first": "Ada", "last": "L"})
    assert out == {"billing_address": {"city": "Berlin", "zip": "10115"}, "currency": "EUR",
                   "tags": ["a"], "name": "Ada L"}
    out["tags"].append("b")  # constants are copied, not shared between records
    assert m.apply({})["tags"] == ["a"]


def test_null_source_is_none_and_default_applies():
    m = mapping({"a": {"from": "x.y.z"}, "b": {"from": "nope", "default": 0}})
    assert m.apply({"x": {"y": None}, "nope": None}) == {"a": None, "b": 0}


def test_absent_source_leaves_the_target_unset_and_is_reported():
    """A `from:` the record lacks (a typo: emial) must not become a null over good data."""
    m = mapping({"email": {"from": "emial", "transforms": ["email"], "default": "x@y.z"},
                 "name": {"from": "name"},
                 "city": {"from": "address.city"},
                 "both": {"from": ["name", "nick"], "transforms": ["coalesce"]},
                 "kind": {"value": "customer"}})
    assert m.apply({"name": "Ada", "address": {}}) == {"name": "Ada", "both": "Ada",
                                                       "kind": "customer"}
    assert m.apply({"name": "Bob", "address": None, "nick": "B"})["city"] is None
    assert m.absent_sources() == ["emial"]        # nick and address.city were seen once
    assert m.absent_sources() == []               # counting starts afresh


def test_absent_required_source_is_record_error():
    m = mapping({"id": {"from": "id", "required": True}})
    with pytest.raises(RecordError, match="is required, but the record has no field 'id'"):
        m.apply({"ID": "1"})


def test_absent_paths_inside_each_are_named_by_their_list():
    m = mapping({"lines": {"from": "items", "each": {"sku": {"from": "skuu"},
                                                      "qty": {"from": "qty"}}}})
    assert m.apply({"items": [{"sku": "A", "qty": 1}]}) == {"lines": [{"qty": 1}]}
    assert m.absent_sources() == ["items[].skuu"]


def test_required_field_without_value_is_record_error():
    m = mapping({"id": {"from": "id", "required": True}})
    with pytest.raises(RecordError, match="mapping 't', field 'id': is required") as info:
        m.apply({"id": None})
    assert info.value.field == "id"


def test_value_map_error_mode_names_value():
    m = mapping({"type": {"from": "kind", "transforms": [
        {"value_map": {"map": {"Customer": "customer"}, "on_missing": "error"}}]}})
    assert m.apply({"kind": "Customer"}) == {"type": "customer"}
    with pytest.raises(RecordError, match="field 'type': 'Partner' is not in the value map"):
        m.apply({"kind": "Partner"})


@pytest.mark.parametrize(
    ("cond", "record", "expected"),
    [
        ({"field": "s", "equals": "won"}, {"s": "won"}, True),
        ({"field": "s", "equals": "won"}, {"s": "lost"}, False),
        ({"field": "n", "equals": 5}, {"n": "5"}, True),
        ({"field": "s", "not_equals": "won"}, {"s": "lost"}, True),
        ({"field": "s", "in": ["a", "b"]}, {"s": "b"}, True),
        ({"field": "s", "in": ["a", "b"]}, {"s": "c"}, False),
        ({"field": "s", "not_in": ["a"]}, {"s": "c"}, True),
        ({"field": "s", "is_null": True}, {"s": ""}, True),
        ({"field": "s", "is_null": True}, {}, True),
        ({"field": "s", "not_null": True}, {"s": "x"}, True),
        ({"field": "s", "matches": "^A\\d+$"}, {"s": "A12"}, True),
        ({"field": "s", "matches": "^A\\d+$"}, {"s": None}, False),
        ({"field": "a.b", "equals": 1}, {"a": {"b": 1}}, True),
        ({"all": [{"field": "a", "equals": 1}, {"field": "b", "equals": 2}]},
         {"a": 1, "b": 2}, True),
        ({"all": [{"field": "a", "equals": 1}, {"field": "b", "equals": 2}]},
         {"a": 1, "b": 3}, False),
        ({"any": [{"field": "a", "equals": 1}, {"field": "b", "equals": 2}]},
         {"a": 0, "b": 2}, True),
        ({"not": {"field": "a", "equals": 1}}, {"a": 1}, False),
    ],
)
def test_conditions(cond, record, expected):
    assert mapping({"x": {"from": "x"}}, where=cond).matches(record) is expected
    field_when = mapping({"x": {"value": 1, "when": cond}})
    assert ("x" in field_when.apply(record)) is expected


@pytest.mark.parametrize(
    "cond",
    [{"field": "a"}, {"field": "a", "equals": 1, "in": [1]}, {"all": [], "field": "a"},
     {"equals": 1}, {"field": "a", "matches": "("}],
)
def test_bad_conditions_are_rejected(cond):
    with pytest.raises(ValueError):
        mapping({"x": {"from": "x"}}, where=cond)


def test_each_maps_child_records_and_names_element_in_errors():
    m = mapping({"lines": {"from": "lines", "each": {
        "product_code": {"from": "sku", "transforms": ["upper"]},
        "quantity": {"from": "qty", "transforms": ["decimal"]},
    }}})
    out = m.apply({"lines": [{"sku": "a1", "qty": "2"}, {"sku": "b2", "qty": 1.5}]})
    assert out == {"lines": [{"product_code": "A1", "quantity": Decimal("2")},
                             {"product_code": "B2", "quantity": Decimal("1.5")}]}
    assert m.apply({"lines": None}) == {"lines": None}
    with pytest.raises(RecordError, match=r"field 'lines\[1\]\.quantity': 'x' is not a number"):
        m.apply({"lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": "x"}]})
    with pytest.raises(RecordError, match="'each' needs a list"):
        m.apply({"lines": "nope"})


def test_xref_inbound_and_outbound():
    resolver = DictResolver({("Account", "crm", "7"): "acc-1"})
    inbound = mapping({"account_id": {"from": "aid", "transforms": [{"xref": "Account"}]}})
    assert inbound.apply({"aid": 7}, resolver) == {"account_id": "acc-1"}
    outbound = mapping({"AccountId": {"from": "account_id",
                                      "transforms": [{"xref": {"entity": "Account"}}]}},
                       direction="outbound")
    assert outbound.apply({"account_id": "acc-1"}, resolver) == {"AccountId": "7"}


def test_xref_parent_missing_propagates():
    m = mapping({"account_id": {"from": "account_id", "transforms": [{"xref": "Account"}]}},
                direction="outbound", system="erp")
    with pytest.raises(ParentMissingError) as info:
        m.apply({"account_id": "acc-9"}, DictResolver())
    assert info.value.entity == "Account" and info.value.key == "acc-9"
    assert info.value.field == "account_id"
    assert info.value.stage == "parked"


def test_xref_without_resolver_is_record_error():
    m = mapping({"a": {"from": "a", "transforms": [{"xref": "Account"}]}})
    with pytest.raises(RecordError, match="needs a resolver"):
        m.apply({"a": "1"})


def test_explain_traces_every_step_and_keeps_errors():
    m = mapping({
        "name": {"from": "n", "transforms": ["strip", "title"]},
        "email": {"from": "e", "transforms": ["email"]},
        "vip": {"from": "v", "when": {"field": "kind", "equals": "Customer"}},
        "lines": {"from": "lines", "each": {"q": {"from": "q", "transforms": ["int"]}}},
    })
    record = {"n": "  ada lovelace ", "e": "bob@@x", "v": 1, "kind": "Prospect",
              "lines": [{"q": "3"}]}
    traces = {t.target: t for t in m.explain(record)}
    assert traces["name"].sources == ["n"]
    assert traces["name"].raw == "  ada lovelace "
    assert traces["name"].steps == [("strip", "ada lovelace"), ("title", "Ada Lovelace")]
    assert traces["name"].value == "Ada Lovelace" and traces["name"].error is None
    assert traces["email"].error is not None
    assert "'bob@@x' is not a valid e-mail address" in traces["email"].error
    assert traces["vip"].skipped is True
    child = traces["lines"].children[0][0]
    assert (child.target, child.raw, child.value) == ("q", "3", 3)


def test_unknown_transform_in_code_built_spec_is_config_error():
    spec = MappingSpec.model_validate({
        "mapping": "m", "direction": "inbound", "entity": "Account",
        "fields": {"a": {"from": "a", "transforms": ["lowre", {"decimal": {"place": 2}}]}},
    })
    with pytest.raises(ConfigError) as info:
        compile_mapping(spec, system="crm")
    messages = [i.message for i in info.value.issues]
    assert any("unknown transform 'lowre'; did you mean 'lower'?" in m for m in messages)
    assert any("has no argument 'place'; did you mean 'places'?" in m for m in messages)


def test_overlapping_targets_are_config_errors():
    with pytest.raises(ConfigError, match="target 'addr.city' is inside target 'addr'"):
        mapping({"addr": {"from": "a"}, "addr.city": {"from": "c"}})


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [({"from": "a", "value": 1}, "exactly one of 'from'"), ({}, "exactly one of 'from'"),
     ({"from": []}, "at least one"),
     ({"from": "l", "each": {"a": {"from": "a"}}, "transforms": ["strip"]}, "do not mix")],
)
def test_field_spec_rules(spec, fragment):
    with pytest.raises(ValueError, match=fragment):
        mapping({"x": spec})


def test_a_record_a_transform_refuses_leaves_no_garbage_cycle():
    """A refused record's error holds its traceback; nothing of the mapping may hold the
    error in turn (a cycle freed only by the garbage collector, which a run calls
    seldom: memory would grow with the bad records of a large sync)."""
    m = mapping({"type": {"from": "kind", "transforms": [
        {"value_map": {"map": {"a": "customer"}, "on_missing": "error"}}]}})
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            try:
                m.apply({"kind": "zz"})
            except RecordError:
                pass
        assert gc.collect() == 0
    finally:
        gc.enable()

"""The fast JSON encoding gives exactly the text the converting one gives, so
payload hashes stored by earlier versions stay valid."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from crm2erp.jsonutil import dumps, payload_hash, to_jsonable

_leaves = (st.none() | st.booleans() | st.integers() | st.text()
           | st.floats(allow_nan=False) | st.decimals(allow_nan=False, allow_infinity=False)
           | st.datetimes(timezones=st.just(dt.UTC)) | st.dates() | st.binary(max_size=8))
_values = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                       max_leaves=20)


def _reference(value) -> str:
    return json.dumps(to_jsonable(value), ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))


@settings(max_examples=200, deadline=None)
@given(_values)
def test_dumps_equals_the_converting_encoder(value):
    assert dumps(value) == _reference(value)


def test_keys_json_would_not_take_fall_back_to_str():
    value = {(1, 2): Decimal("1.50"), "a": dt.date(2026, 1, 2)}
    assert dumps(value) == _reference(value)
    assert payload_hash({"b": 1, "a": 2}) == payload_hash({"a": 2, "b": 1})


def test_short_hash_is_the_blake2b_of_the_json_text_for_text_and_other_values():
    import hashlib

    from crm2erp.jsonutil import short_hash

    def expected(text: str) -> str:
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    for _ in range(2):   # text values are remembered: the second call answers the same
        assert short_hash("Köln \"Nord\"") == expected('"Köln \\"Nord\\""')
    assert short_hash(None) == expected("null")
    assert short_hash({"b": 1, "a": [True]}) == expected('{"a":[true],"b":1}')

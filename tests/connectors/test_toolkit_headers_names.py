"""The toolkit's numbers from an answer's headers and the names a system lacks."""

from __future__ import annotations

import requests

from crm2erp.connectors.toolkit.errors import missing_names
from crm2erp.connectors.toolkit.headers import header_numbers

HEADERS = {"daily": "X-Limit-Daily", "left": "X-Limit-Left", "window": "X-Limit-Window"}


def answer(**headers: str) -> requests.Response:
    resp = requests.Response()
    resp.headers.update(headers)
    return resp


def test_header_numbers_are_the_integer_headers_present():
    resp = answer(**{"X-Limit-Daily": "250000", "X-Limit-Left": "n/a", "Other": "1"})
    assert header_numbers(resp, HEADERS) == {"daily": 250_000}
    assert header_numbers(answer(**{"x-limit-left": "7"}), HEADERS) == {"left": 7}  # any case
    assert header_numbers(None, HEADERS) == {}


def test_missing_names_are_sorted_once_each_or_none():
    known = {"name": {}, "domain": {}}
    assert missing_names("companies", "properties", ["zip", "name", "colour", "zip"], known) \
        == "companies has no properties colour, zip"
    assert missing_names("companies", "properties", ["name"], known) is None
    assert missing_names("Account", "field(s)", [], set()) is None

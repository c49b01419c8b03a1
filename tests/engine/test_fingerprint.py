"""The source-row hash is what a ``--full-refresh`` compares with the xref's: it must
not change from one release to the next for the same row, or every record would be
mapped and written again after an upgrade."""

import datetime as dt
import zoneinfo
from decimal import Decimal

from crm2erp.engine.fingerprint import source_hash

ROW = {"name": "Müller  GmbH", "id": "A-1", "balance": Decimal("1200.50"), "count": 3,
       "ratio": 0.25, "active": True, "note": None, "blob": b"\x01\xff",
       "updated_at": dt.datetime(2026, 3, 1, 8, 30, 15, 120000,
                                 tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")),
       "created_at": dt.datetime(2025, 1, 2, 3, 4, 5), "born": dt.date(1990, 5, 17),
       "contacts": [{"last": "Ünal", "first": "Ada", "amount": Decimal("1E+2")}, {}]}


def test_the_hash_of_a_row_is_the_one_earlier_releases_stored():
    # the first 64 bits of what source_hash gave before the hashing was made faster
    # (issue 12), which migration 0014 keeps of a stored 128-bit hash
    assert source_hash("0123456789abcdef", ROW) == "392b80407c3cd37c966c7db565eb2006"[:16]
    assert source_hash("fedcba9876543210", ROW) == "ada92b22da5504917fb5d7baa9820fa6"[:16]


def test_the_hash_does_not_depend_on_the_order_of_the_columns():
    reordered = dict(reversed(list(ROW.items())))
    assert source_hash("0123456789abcdef", reordered) == "392b80407c3cd37c"


def test_any_changed_value_changes_the_hash():
    before = source_hash("0123456789abcdef", ROW)
    for name, value in (("name", "Müller GmbH"), ("balance", Decimal("1200.5")),
                        ("count", 4), ("active", False), ("note", ""),
                        ("created_at", dt.datetime(2025, 1, 2, 3, 4, 6)),
                        ("contacts", [{"last": "Ünal", "first": "Ada"}, {}])):
        assert source_hash("0123456789abcdef", {**ROW, name: value}) != before, name
    assert source_hash("0123456789abcdee", ROW) != before

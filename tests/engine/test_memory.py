"""The hub's memory of each field (unit tests of crm2erp.engine.memory)."""

import datetime as dt

import pytest

from crm2erp.engine.memory import (
    FieldMemory,
    field_memory,
    learned,
    next_state,
    owner_of,
    settle,
)

T = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _settle(state, system, new, ownership=None, rule="ownership"):
    return settle(entity="Account", canonical_id="c1", system=system, mapped_paths=list(new),
                  new=new, state=state, ownership=ownership or {}, rule=rule, changed_at=T)


def _remember(state, system, new, settlement):
    return next_state(entity="Account", canonical_id="c1", system=system, data=new,
                      previous=state, settlement=settlement, changed_at=T)


def test_a_source_repeating_its_old_value_is_not_news():
    crm = {"status": "confirmed"}
    first = _settle(None, "crm", crm)
    state = _remember(None, "crm", crm, first)
    erp = _settle(state, "erp", {"status": "invoiced"})          # the ERP moved it on
    assert erp.accepted == ["status"]
    state = _remember(state, "erp", {"status": "invoiced"}, erp)
    again = _settle(state, "crm", crm)                           # the CRM still says confirmed
    assert not again.has_news and not again.conflicts


def test_a_real_edit_of_a_field_owned_elsewhere_is_a_logged_conflict():
    state = _remember(None, "erp", {"credit_limit": "5000"},
                      _settle(None, "erp", {"credit_limit": "5000"}))
    edit = _settle(state, "crm", {"credit_limit": "9999"}, {"credit_limit": "erp"})
    assert not edit.has_news and edit.reverts == {"credit_limit": "5000"}
    [conflict] = edit.conflicts
    assert (conflict.system, conflict.winner, conflict.rule) == ("crm", "erp", "ownership")
    state = _remember(state, "crm", {"credit_limit": "5000"}, edit)
    assert not _settle(state, "crm", {"credit_limit": "9999"}, {"credit_limit": "erp"}).conflicts


def test_owner_of_takes_the_longest_covering_entry():
    ownership = {"billing_address": "crm", "billing_address.country": "erp"}
    assert owner_of("billing_address.city", ownership) == "crm"
    assert owner_of("billing_address.country", ownership) == "erp"
    assert owner_of("name", ownership) is None


def test_memory_is_stored_compactly_and_read_back():
    state = _remember(None, "crm", {"name": "Acme", "city": "Oslo", "fax": None},
                      _settle(None, "crm", {"name": "Acme", "city": "Oslo"}))
    # one (who, when) for the record, no hash of a value the hub kept, no unset null
    assert state.field_times == {"v": 3, "by": "crm", "at": T.isoformat()}
    assert state.data == {"name": "Acme", "city": "Oslo"}
    assert field_memory(state) == {"name": ("crm", T.isoformat(), {}),
                                   "city": ("crm", T.isoformat(), {})}


def test_only_sent_values_the_hub_did_not_keep_are_hashed():
    crm = {"status": "confirmed", "name": "Acme", "city": "Oslo"}
    state = _remember(None, "crm", crm, _settle(None, "crm", crm))
    erp = _settle(state, "erp", {"status": "invoiced"})
    later = T + dt.timedelta(hours=1)
    state = next_state(entity="Account", canonical_id="c1", system="erp",
                       data={**crm, "status": "invoiced"}, previous=state,
                       settlement=erp, changed_at=later)
    times = state.field_times
    assert (times["by"], times["at"]) == ("crm", T.isoformat())      # the usual pair
    assert times["f"] == {"status": ["erp", later.isoformat()]}      # the other one
    assert list(times["s"]) == ["status"] and list(times["s"]["status"]) == ["crm"]
    assert len(times["s"]["status"]["crm"]) == 16
    memory = FieldMemory(state)
    assert memory.pair("status") == ("erp", later.isoformat())
    assert memory.pair("name") == ("crm", T.isoformat()) and memory.pair("x") == (None, None)
    # the CRM catches up (not the changer: its hash is kept, now the new value)
    assert not _settle(state, "crm", crm).has_news            # it has not caught up
    caught = _settle(state, "crm", {**crm, "status": "invoiced"})
    assert not caught.has_news and learned(state, caught, "crm")
    state = _remember(state, "crm", {**crm, "status": "invoiced"}, caught)
    assert state.field_times["s"] == {"status": {"crm": caught.seen["status"]}}
    assert not learned(state, _settle(state, "crm", {"status": "invoiced"}), "crm")
    # the ERP changes it again: what the CRM sent (the stored value) is written out
    erp = _settle(state, "erp", {"status": "paid"})
    state = _remember(state, "erp", {**crm, "status": "paid"}, erp)
    assert state.field_times["s"]["status"]["crm"] == caught.seen["status"]
    assert not _settle(state, "crm", {**crm, "status": "invoiced"}).has_news


def test_a_null_somebody_set_is_kept_with_its_change():
    state = _remember(None, "crm", {"name": "Acme", "fax": "1"},
                      _settle(None, "crm", {"name": "Acme", "fax": "1"}))
    cleared = _settle(state, "crm", {"name": "Acme", "fax": None})
    assert cleared.accepted == ["fax"]
    state = _remember(state, "crm", {"name": "Acme", "fax": None}, cleared)
    assert state.data == {"name": "Acme", "fax": None}
    assert FieldMemory(state).pair("fax") == ("crm", T.isoformat())
    assert not _settle(state, "crm", {"name": "Acme", "fax": None}).has_news


def test_a_sha256_remembered_before_the_compact_formats_is_still_understood():
    """Migration 0008 keeps such a hash's first 128 bits; payload_hash is its first 64."""
    import hashlib

    from crm2erp.jsonutil import dumps, payload_hash
    from crm2erp.store import CanonicalState

    kept = hashlib.sha256(dumps("confirmed").encode()).hexdigest()[:32]
    assert kept.startswith(payload_hash("confirmed"))
    old = CanonicalState("Account", "c1", {"status": "invoiced"}, {
        "v": 3, "by": "erp", "at": T.isoformat(), "s": {"status": {"crm": kept}}})
    again = _settle(old, "crm", {"status": "confirmed"})   # the CRM has not caught up
    assert not again.has_news and not again.conflicts
    assert _settle(old, "crm", {"status": "cancelled"}).accepted == ["status"]


def test_a_new_record_remembers_what_was_sent_and_who_changed_which_field():
    from crm2erp.engine.memory import Settlement

    new = {"name": "Acme", "city": "Oslo"}
    settlement = _settle(None, "crm", new)
    settlement.accepted = ["name"]                 # the city was sent, but is no news
    state = _remember(None, "crm", {"id": "c1", **new}, settlement)
    assert state.data == new                       # identity is not content
    assert state.field_times == {"v": 3, "by": "crm", "at": T.isoformat(),
                                 "f": {"city": None},
                                 "s": {"city": {"crm": settlement.seen["city"]}}}
    nothing = _remember(None, "crm", new, Settlement(sent_values=settlement.sent_values))
    assert nothing.field_times == {"v": 3, "f": {"name": None, "city": None},
                                   "s": {p: {"crm": h} for p, h in settlement.seen.items()}}


def test_values_sent_now_give_the_state_their_hashes_give():
    """compact_state hashes what a system sent now only where it is kept: the result
    equals the one from the hashes given up front (same object, equal copy, a value
    the hub did not keep, a field another system changed last, a null)."""
    from crm2erp.jsonutil import short_hash
    from crm2erp.store.fieldmemory import compact_state

    data = {"name": "Acme", "city": "Oslo", "status": "paid", "fax": None,
            "address": {"street": "Main 1", "zip": "0150"}}
    sent_now = {"name": data["name"], "city": "Oslo".lower().title(),   # an equal copy
                "status": "open", "fax": None, "address.street": "Main 1"}
    pairs = {"name": ("crm", "t1"), "city": ("crm", "t1"), "status": ("erp", "t2"),
             "fax": ("crm", "t1"), "address.street": ("erp", "t2")}
    before = {"status": {"crm": short_hash("draft"), "erp": short_hash("paid")},
              "address.zip": {"crm": short_hash("0151")}}
    hashed = {path: {**before.get(path, {}), "crm": short_hash(value)}
              for path, value in sent_now.items()}
    expected = compact_state("Account", "c1", data, pairs, {**before, **hashed})
    got = compact_state("Account", "c1", data, pairs, before, ("crm", sent_now))
    assert got == expected
    assert got.field_times["s"] == {"status": {"crm": short_hash("open")},
                                    "address.street": {"crm": short_hash("Main 1")},
                                    "address.zip": {"crm": short_hash("0151")}}


def test_the_stored_form_gives_the_memory_back_and_is_smaller_than_its_json():
    from crm2erp.jsonutil import dumps
    from crm2erp.store.fieldmemory import decode, encode

    data = {"name": "Lindqvist Energy GmbH", "type": "customer", "currency": "EUR",
            "email": "orders@lindqvist.example", "phone": "+442074741950",
            "billing_address": {"city": "Zürich", "country": "CH", "street": "Main St 1"},
            "lines": [{"sku": "A-1", "quantity": 2.5}], "active": True, "note": None}
    times = {"v": 3, "by": "crm", "at": "1999-06-18T08:57:00+00:00", "f": {"status": None}}
    stored = encode(data, times)
    assert decode(stored) == (data, times)
    assert decode(memoryview(stored)) == (data, times)     # as some drivers return it
    assert encode(data, times) == stored                    # equal memory, equal bytes
    assert len(stored) < 0.75 * len(dumps(data) + dumps(times))
    assert decode(encode({}, {})) == ({}, {})


def test_times_in_whole_seconds_are_stored_as_numbers_and_come_back_as_their_text():
    """Formats 2 and 3 keep a time of field_times that is whole UTC seconds as integer seconds
    (8 bytes less for a one-source record); any other time stays text, a slot that holds no
    text keeps the whole record in format 1, and a value of format 1 written earlier
    still reads."""
    import zlib

    from crm2erp.jsonutil import dumps
    from crm2erp.store import fieldmemory
    from crm2erp.store.fieldmemory import decode, encode

    data = {"name": "Polaris Medical Ltd", "type": "customer", "phone": "+33143886466"}
    times = {"v": 3, "by": "crm", "at": "1999-04-03T05:59:12+00:00",
             "f": {"status": None, "name": ["erp", "2026-12-07T17:33:26+00:00"],
                   "type": ["erp", "2026-12-07T17:33:26.250000+00:00"],
                   "phone": ["erp", "2026-12-07T18:33:26+01:00"]}}
    stored = encode(data, times)
    assert stored[0] == 3 and decode(stored) == (data, times)   # format 2's times, shaped
    usual = {"v": 3, "by": "crm", "at": "1999-04-03T05:59:12+00:00", "f": {"status": None}}
    packer = zlib.compressobj(6, zlib.DEFLATED, -12, 2, zdict=fieldmemory._DICTIONARY)
    earlier = b"\x01" + packer.compress(dumps([usual, data]).encode()) + packer.flush()
    assert decode(earlier) == (data, usual)                 # format 1 still reads
    assert len(encode(data, usual)) <= len(earlier) - 8     # a one-source record
    odd = {"v": 3, "by": "crm", "at": 1234567890}
    assert encode(data, odd)[0] == 1 and decode(encode(data, odd)) == (data, odd)
    fresh = zlib.compressobj(6, zlib.DEFLATED, -12, 2, zdict=fieldmemory._DICTIONARY)
    assert encode(data, odd) == (   # the primed compressor's copies deflate as a new one
        b"\x01" + fresh.compress(dumps([odd, data]).encode()) + fresh.flush())
    for at in ("1970-01-01T00:00:00+00:00", "1969-12-31T23:59:59+00:00",
               "2024-02-30T00:00:00+00:00", "2024-01-01T00:00:00Z", None):
        assert decode(encode(data, {"v": 3, "by": "crm", "at": at})) == (
            data, {"v": 3, "by": "crm", "at": at})


def test_format_3_deflates_with_the_models_shapes_and_formats_1_and_2_still_read():
    """Format 3 is format 2 (times as seconds) deflated with the canonical models' record
    shapes: a record's keys cost a few long matches, 20+ bytes less for an account; values
    of formats 1 and 2 written earlier still read as they were."""
    import zlib

    from crm2erp.jsonutil import dumps
    from crm2erp.store import fieldmemory
    from crm2erp.store.fieldmemory import decode, encode

    data = {"billing_address": {"city": "Wien", "country": "AT", "postal_code": "25439",
                                "street": "Main St 139"},
            "currency": "EUR", "email": "info@kestrel.example", "extensions": {"segment": "SMB"},
            "name": "Kestrel Systems GmbH", "phone": "+4314261763", "status": "active",
            "tax_id": "AU701571670", "type": "partner"}
    times = {"v": 3, "by": "crm", "at": "1976-11-16T04:42:00+00:00", "f": {"status": None}}
    earlier = {}
    for head, framed in ((1, times), (2, fieldmemory._packed_times(times))):
        packer = zlib.compressobj(6, zlib.DEFLATED, -12, 2, zdict=fieldmemory._DICTIONARY)
        earlier[head] = (bytes((head,)) + packer.compress(dumps([framed, data]).encode())
                         + packer.flush())
        assert decode(earlier[head]) == (data, times)
    stored = encode(data, times)
    assert stored[0] == 3 and decode(stored) == (data, times)
    assert len(stored) <= len(earlier[2]) - 20
    shaper = zlib.compressobj(5, zlib.DEFLATED, -12, 2, zdict=fieldmemory._SHAPES)
    framed = dumps([fieldmemory._packed_times(times), data]).encode()
    assert stored == b"\x03" + shaper.compress(framed) + shaper.flush()   # a new one's bytes


def test_a_stored_form_of_an_unknown_format_is_refused_by_name():
    from crm2erp.store.fieldmemory import decode

    with pytest.raises(ValueError, match="unknown stored hub memory format"):
        decode(b"\x07abc")
    with pytest.raises(ValueError, match="unknown stored hub memory format"):
        decode(b"")

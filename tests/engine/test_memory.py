"""The hub's memory of each field (unit tests of crm2erp.engine.memory)."""

import datetime as dt

from crm2erp.engine.memory import field_memory, next_state, owner_of, settle

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
    state = _remember(None, "crm", {"name": "Acme", "city": "Oslo"},
                      _settle(None, "crm", {"name": "Acme", "city": "Oslo"}))
    times = state.field_times
    assert times["v"] == 2 and times["w"] == [["crm", T.isoformat()]]    # the pair once
    assert set(times["f"]) == {"name", "city"}
    assert all(len(h) == 16 for _, seen in times["f"].values() for h in seen.values())
    assert field_memory(state)["name"][:2] == ("crm", T.isoformat())


def test_states_remembered_in_the_earlier_formats_are_still_understood():
    from crm2erp.jsonutil import payload_hash
    from crm2erp.store import CanonicalState

    # the per-field dict with sha256 hashes: the ERP moved status on, the CRM
    # still sends its old value, which is not news
    old = CanonicalState("Account", "c1", {"status": "invoiced"}, {"status": {
        "by": "erp", "at": T.isoformat(),
        "seen": {"crm": payload_hash("confirmed"), "erp": payload_hash("invoiced")}}})
    again = _settle(old, "crm", {"status": "confirmed"})
    assert not again.has_news and not again.conflicts
    assert _settle(old, "crm", {"status": "cancelled"}).accepted == ["status"]
    # the first format, [system, time]
    first = CanonicalState("Account", "c1", {"status": "invoiced"},
                           {"status": ["erp", T.isoformat()]})
    assert field_memory(first) == {"status": ("erp", T.isoformat(), {})}
    # written again, both come out compact and keep who changed the field
    state = _remember(old, "crm", {"status": "invoiced"}, again)
    assert state.field_times["v"] == 2
    assert field_memory(state)["status"][:2] == ("erp", T.isoformat())
    assert not _settle(state, "crm", {"status": "confirmed"}).has_news


def test_a_new_record_remembers_what_was_sent_and_who_changed_which_field():
    from crm2erp.engine.memory import Settlement

    new = {"name": "Acme", "city": "Oslo"}
    settlement = _settle(None, "crm", new)
    settlement.accepted = ["name"]                 # the city was sent, but is no news
    state = _remember(None, "crm", {"id": "c1", **new}, settlement)
    assert state.data == new                       # identity is not content
    assert state.field_times == {"v": 2, "w": [["crm", T.isoformat()]], "f": {
        "name": [0, {"crm": settlement.seen["name"]}],
        "city": [None, {"crm": settlement.seen["city"]}]}}
    nothing = _remember(None, "crm", new, Settlement(seen=settlement.seen))
    assert nothing.field_times["w"] == []
    assert [index for index, _ in nothing.field_times["f"].values()] == [None, None]

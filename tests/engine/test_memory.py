"""The hub's memory of each field (unit tests of crm2erp.engine.memory)."""

import datetime as dt

from crm2erp.engine.memory import next_state, owner_of, settle

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

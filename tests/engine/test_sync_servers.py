"""The acceptance checks of the walking skeleton on PostgreSQL and MariaDB:
CRM, ERP and the state store on the real servers."""

from __future__ import annotations


def test_two_runs_give_identical_rows_and_bad_records_dead_lettered(
        account, server_systems, engine_for):
    s = server_systems
    s.add_accounts(*(account(n) for n in range(1, 21)),
                   account(21, email="broken@@mail"), account(22, kind="Z"))
    s.add_contacts(*({"id": f"P{n}", "account_id": f"A{n:03d}", "last_name": f"Person {n}",
                      "updated_at": account(n)["updated_at"]} for n in range(1, 23)))
    engine = engine_for(s)
    first = engine.run_all()
    customers, people = s.erp_rows(), s.erp_rows("people")
    second = engine.run_all()

    assert [r.counts["created"] for r in first] == [20, 20]
    assert first[1].counts["parked"] == 2          # their accounts were dead-lettered
    assert sum(r.changed for r in second) == 0
    assert s.erp_rows() == customers and s.erp_rows("people") == people
    assert len({c["crm_ref"] for c in customers}) == len(customers) == 20
    letters = {d.source_key: d.error for d in engine.store.dead_letters("accounts")}
    assert set(letters) == {"A021", "A022"}
    assert "broken@@mail" in letters["A021"]
    assert "'Z'" in letters["A022"] or "Z" in letters["A022"]
    assert {p["customer_id"] for p in people} <= {c["id"] for c in customers}

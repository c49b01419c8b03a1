"""Entity and system names are numbered once per store (crm2erp.store.names); a
look-up under names nothing was written with finds nothing and, on SQLite, takes
no write lock."""

from __future__ import annotations

import sqlalchemy as sa

from crm2erp.store import BatchCommit, CanonicalState, StateStore, XrefUpsert


def test_look_ups_before_any_write_find_nothing_without_a_write_lock(sqlite_store_url):
    store = StateStore.open(sqlite_store_url)
    sent: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda _c, _cur, statement, *_: sent.append(statement))
    try:
        assert store.xref_hashes("Account", "crm", ["A1"]) == {}
        assert store.external_ids("Account", "erp", ["c-1"]) == {}
        assert store.canonical_states("Account", ["c-1"]) == {}
        assert store.xref_count("Account", "crm") == 0
        assert "BEGIN" in sent and "BEGIN IMMEDIATE" not in sent
        run_id = store.start_run("accounts", "incremental")
        store.commit_batch(BatchCommit(
            run_id=run_id, flow="accounts",
            xref=[XrefUpsert("Account", "crm", "A1", "c-1"),
                  XrefUpsert("Account", "erp", "7", "c-1")],
            canonical=[CanonicalState("Account", "c-1", {"name": "Acme"}, {})]))
        assert store.xref_hashes("Account", "crm", ["A1"]) == {"A1": ("c-1", None)}
        assert store.external_ids("Account", "erp", ["c-1"]) == {"c-1": "7"}
        assert store.canonical_states("Account", ["c-1"])["c-1"].data == {"name": "Acme"}
    finally:
        store.close()
    again = StateStore.open(sqlite_store_url)   # a new process: the same numbers
    try:
        assert again.names.ids(["Account", "crm", "erp"]) == store.names.ids(
            ["Account", "crm", "erp"])
        assert again.xref_count("Account") == 2
        with again.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM names")).scalar_one() == 3
    finally:
        again.close()


def test_a_name_another_process_adds_first_gets_its_number_not_a_second_row(
        sqlite_store_url, monkeypatch):
    """The race of two first writes under one name: this store saw no number, then the
    other process's insert won; the unique name refuses ours and the other's number is
    the one used."""
    ours, theirs = StateStore.open(sqlite_store_url), StateStore.open(sqlite_store_url)
    try:
        real_known, calls = ours.names.known, []

        def known(name: str) -> int | None:   # the first look-up ran before their insert
            calls.append(name)
            return None if len(calls) == 1 else real_known(name)

        monkeypatch.setattr(ours.names, "known", known)
        number = theirs.names.ids(["Account"])["Account"]
        assert ours.names.ids(["Account"]) == {"Account": number}
        assert calls == ["Account", "Account"]   # missed, insert refused, found
        with ours.engine.connect() as conn:
            assert conn.execute(sa.text(
                "SELECT count(*) FROM names WHERE name = 'Account'")).scalar_one() == 1
    finally:
        ours.close()
        theirs.close()

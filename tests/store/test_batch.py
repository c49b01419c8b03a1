"""commit_batch: xref, dead letters, watermark and counters in one transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm2erp.connectors.base import Cursor
from crm2erp.store import (
    BatchCommit,
    CanonicalState,
    NewDeadLetter,
    StateStore,
    XrefUpsert,
)


@pytest.fixture
def store(any_reused_store_url):
    store = StateStore.open(any_reused_store_url)
    yield store
    store.close()


def _batch(run_id: int, **kwargs) -> BatchCommit:
    return BatchCommit(run_id=run_id, flow="accounts", **kwargs)


def test_commit_batch_is_atomic(store):
    run_id = store.start_run("accounts", "incremental")
    store.commit_batch(_batch(
        run_id, xref=[XrefUpsert("account", "sf", "A1", "c1", "h1")],
        watermark=("Account", Cursor("2024-01-01T00:00:00+00:00", "A1")),
        counts={"read": 1, "created": 1}))

    failing = _batch(
        run_id,
        xref=[XrefUpsert("account", "sf", "A1", "c1-changed", "h2"),
              XrefUpsert("account", "sf", "A2", "c2", "h3")],
        # source_key is NOT NULL: the database refuses this row after the xref
        # upsert has already run in the same transaction
        dead_letters=[NewDeadLetter("map", None, "bad", {"Id": "A3"})],
        watermark=("Account", Cursor("2024-02-01T00:00:00+00:00", "A2")),
        counts={"read": 5})
    with pytest.raises(sa.exc.IntegrityError):
        store.commit_batch(failing)

    assert store.canonical_ids("account", "sf", ["A1", "A2"]) == {"A1": "c1"}
    assert store.xref_entries("account", "sf", ["A1"])["A1"].payload_hash == "h1"
    assert store.get_watermark("accounts", "Account") == Cursor(
        "2024-01-01T00:00:00+00:00", "A1")
    assert store.get_run(run_id).read == 1
    assert store.count_dead_letters(status=None) == 0


def test_unknown_counter_rejects_the_whole_batch(store):
    run_id = store.start_run("accounts", "incremental")
    with pytest.raises(ValueError, match="bogus"):
        store.commit_batch(_batch(run_id, xref=[XrefUpsert("account", "sf", "A1", "c1")],
                                  counts={"bogus": 1}))
    assert store.xref_count() == 0


def test_xref_upsert_and_bulk_reads(store):
    run_id = store.start_run("accounts", "incremental")
    store.commit_batch(_batch(run_id, xref=[
        XrefUpsert("account", "sf", "A1", "c1", "h1"),
        XrefUpsert("account", "sf", "A2", "c2", "h2"),
        XrefUpsert("account", "erp", "K-1", "c1", "e1"),
        XrefUpsert("contact", "sf", "A1", "p1"),  # same external id, other entity
        XrefUpsert("account", "sf", "A2", "c2", "h2-last"),  # twice in a batch: last wins
    ]))
    store.commit_batch(_batch(run_id, xref=[XrefUpsert("account", "sf", "A1", "c1", "h1-new")]))

    assert store.canonical_ids("account", "sf", ["A1", "A2", "missing"]) == {
        "A1": "c1", "A2": "c2"}
    assert store.canonical_ids("contact", "sf", ["A1"]) == {"A1": "p1"}
    assert store.external_ids("account", "erp", ["c1", "c2"]) == {"c1": "K-1"}
    entries = store.xref_entries("account", "sf", iter(["A1", "A2"]))
    assert entries["A1"].payload_hash == "h1-new"
    assert entries["A2"].payload_hash == "h2-last"
    assert store.xref_by_canonical("account", "erp", ["c1"])["c1"].external_id == "K-1"
    assert store.xref_count() == 4
    assert store.xref_count(entity="account") == 3
    assert store.xref_count(entity="account", system="sf") == 2
    assert store.canonical_ids("account", "sf", []) == {}


def test_a_canonical_id_of_two_source_records_names_the_greater_external_id(store):
    """After a dedupe merge two source records share a canonical id: the look-up by
    canonical id names the greater external id, whichever was written last (the store
    keeps no write times since migration 0014)."""
    run_id = store.start_run("accounts", "incremental")
    for entity, order in (("account", ["A1", "A9"]), ("lead", ["A9", "A1"])):
        for ext in order:   # a batch each: the second written later
            store.commit_batch(_batch(run_id, xref=[
                XrefUpsert(entity, "sf", ext, "c1", f"h-{ext}")]))
        found = store.xref_by_canonical(entity, "sf", ["c1"])
        assert (found["c1"].external_id, found["c1"].payload_hash) == ("A9", "h-A9")

    many = [f"X{i}" for i in range(2500)]  # more than one IN (...) chunk
    store.commit_batch(_batch(run_id, xref=[XrefUpsert("account", "big", x, "c" + x)
                                            for x in many]))
    assert len(store.canonical_ids("account", "big", many)) == 2500


HOSTILE_IDS = ["tab\there", "new\nline", "back\\slash", "\\N", "quote ' \" ", "<b>x</b>",
               "Müller ß 漢字 🚀", " lead and trail ", "comma, semi; pipe|", "a" * 191]


def test_a_batch_of_hostile_ids_is_read_back_as_written(store):
    """A batch of several hundred rows (PostgreSQL: COPY into a stage, then one INSERT
    ... ON CONFLICT) keeps every external id, canonical id (uuid or any text), payload
    hash (hex, a deletion mark, none) and hub memory exactly; a second batch updates
    half of them and leaves the rest as they were."""
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda *args: statements.append(args[2]))
    run_id = store.start_run("accounts", "incremental")
    ext = [f"{HOSTILE_IDS[i % len(HOSTILE_IDS)][:180]}#{i}" for i in range(400)]
    cids = [str(uuid.UUID(int=i + 1)) if i % 2 else f"text id {HOSTILE_IDS[i % 9]} {i}"
            for i in range(400)]
    hashes = [None if i % 3 == 0 else "deleted" if i % 3 == 1 else f"{i:016x}"
              for i in range(400)]
    store.commit_batch(_batch(
        run_id, xref=[XrefUpsert("account", "sf", e, c, h)
                      for e, c, h in zip(ext, cids, hashes, strict=True)],
        canonical=[CanonicalState("account", c, {"name": e, "n": i}, {})
                   for i, (e, c) in enumerate(zip(ext, cids, strict=True))]))
    store.commit_batch(_batch(
        run_id, xref=[XrefUpsert("account", "sf", e, c, "f" * 16)
                      for e, c in zip(ext[:200], cids[:200], strict=True)],
        canonical=[CanonicalState("account", c, {"name": e + " v2"}, {})
                   for e, c in zip(ext[:200], cids[:200], strict=True)]))

    entries = store.xref_entries("account", "sf", ext)
    assert {e: (entries[e].canonical_id, entries[e].payload_hash) for e in ext} == {
        e: (c, "f" * 16 if i < 200 else h)
        for i, (e, c, h) in enumerate(zip(ext, cids, hashes, strict=True))}
    assert store.external_ids("account", "sf", cids) == dict(zip(cids, ext, strict=True))
    states = store.canonical_states("account", cids)
    assert {c: states[c].data for c in cids} == {
        c: {"name": e + " v2"} if i < 200 else {"name": e, "n": i}
        for i, (e, c) in enumerate(zip(ext, cids, strict=True))}
    if store.engine.dialect.name == "postgresql":
        assert sum(s.startswith("CREATE TEMPORARY TABLE") for s in statements) == 4


def test_sync_hashes_tell_the_keys_an_active_dead_letter_of_the_flow_holds(store):
    """A sync batch's one look-up: canonical id, stored hash, and whether an open,
    parked or retrying dead letter of this flow holds the key (a closed one, or one
    of another flow, does not)."""
    run_id = store.start_run("accounts", "incremental")
    keys = ["A1", "A2", "A3", "A4", "A5", "A6", "it's \"quoted\", é"]
    store.commit_batch(_batch(run_id, xref=[
        XrefUpsert("account", "sf", k, f"c{i}", f"h{i}") for i, k in enumerate(keys)]
        + [XrefUpsert("account", "erp", "A1", "e1", "x1")], dead_letters=[
        NewDeadLetter("write_back", "A1", "write-back failed", {"Id": "A1"}),
        NewDeadLetter("parked", "A2", "parent missing", {"Id": "A2"}),
        NewDeadLetter("map", "A3", "no country", {"Id": "A3"}),
        NewDeadLetter("map", "A4", "no country", {"Id": "A4"})]))
    other = store.start_run("contacts", "incremental")
    store.commit_batch(BatchCommit(run_id=other, flow="contacts", dead_letters=[
        NewDeadLetter("map", "A5", "bad", {"Id": "A5"})]))
    [retrying] = [d.id for d in store.dead_letters("accounts") if d.source_key == "A3"]
    [closed] = [d.id for d in store.dead_letters("accounts") if d.source_key == "A4"]
    store.set_dead_letter_status([retrying], "retrying")
    store.set_dead_letter_status([closed], "resolved")

    found = store.sync_hashes("account", "sf", "accounts", iter(keys + ["missing"]))
    assert found == {"A1": ("c0", "h0", True), "A2": ("c1", "h1", True),
                     "A3": ("c2", "h2", True), "A4": ("c3", "h3", False),
                     "A5": ("c4", "h4", False), "A6": ("c5", "h5", False),
                     keys[-1]: ("c6", "h6", False)}
    assert store.sync_hashes("account", "erp", "accounts", ["A1"]) == {
        "A1": ("e1", "x1", True)}
    assert store.xref_hashes("account", "sf", ["A1", "A6", "missing"]) == {
        "A1": ("c0", "h0"), "A6": ("c5", "h5")}
    assert store.sync_hashes("account", "sf", "accounts", []) == {}
    many = [f"X{i}" for i in range(2500)]  # more than one query's worth of keys
    store.commit_batch(_batch(run_id, xref=[XrefUpsert("account", "big", x, "c" + x, x)
                                            for x in many]))
    assert store.sync_hashes("account", "big", "accounts", many) == {
        x: ("c" + x, x, False) for x in many}


def test_xref_and_canonical_scans_page_through_every_id_once(store):
    """iter_xref and iter_canonical_states page by key (xref has no surrogate id, canonical
    ids are stored as bytes): uuids and other ids alike come out once each."""
    import uuid

    from crm2erp.store.records import CanonicalState

    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, str(n))) for n in range(7)] + [
        "", "c-1", "abcdefghijklmno", "\u00fc" * 8, "X" * 191]
    run_id = store.start_run("accounts", "incremental")
    store.commit_batch(_batch(run_id, xref=[
        XrefUpsert("account", "sf", f"S{n}", cid) for n, cid in enumerate(ids)],
        canonical=[CanonicalState("account", cid, {"n": n}, {}) for n, cid in enumerate(ids)]))
    assert sorted(store.iter_xref("account", "sf", chunk=3)) == sorted(
        (f"S{n}", cid) for n, cid in enumerate(ids))
    scanned = [(s.canonical_id, s.data) for s in store.iter_canonical_states("account", chunk=3)]
    assert sorted(scanned) == sorted((cid, {"n": n}) for n, cid in enumerate(ids))


def test_dedupe_merge_maps_two_external_ids_to_one_canonical(store):
    run_id = store.start_run("accounts", "incremental")
    store.commit_batch(_batch(run_id, xref=[XrefUpsert("account", "sf", "A1", "c1")]))
    store.commit_batch(_batch(run_id, xref=[XrefUpsert("account", "sf", "A9", "c1")]))
    assert store.canonical_ids("account", "sf", ["A1", "A9"]) == {"A1": "c1", "A9": "c1"}
    assert store.external_ids("account", "sf", ["c1"]) == {"c1": "A9"}  # latest wins


def test_dead_letters_deduplicate_per_key_and_resolve(store):
    run1 = store.start_run("accounts", "incremental")
    first = store.commit_batch(_batch(run1, dead_letters=[
        NewDeadLetter("map", "A1", "no country", {"Id": "A1", "Country": None}),
        NewDeadLetter("parked", "A2", "parent missing", {"Id": "A2"}),
    ]))
    assert [(w.source_key, w.new, w.payload_changed) for w in first.dead_letters] == [
        ("A1", True, True), ("A2", True, True)]

    run2 = store.start_run("accounts", "incremental")
    again = store.commit_batch(_batch(run2, dead_letters=[
        NewDeadLetter("map", "A1", "no country", {"Id": "A1", "Country": None}),
        NewDeadLetter("validate", "A2", "bad vat", {"Id": "A2", "Vat": "x"}),
    ]))
    assert [(w.new, w.payload_changed) for w in again.dead_letters] == [
        (False, False), (False, True)]
    assert {w.id for w in again.dead_letters} == {w.id for w in first.dead_letters}

    letters = {d.source_key: d for d in store.dead_letters("accounts", status=None)}
    assert len(letters) == 2
    assert letters["A1"].attempts == 2 and letters["A1"].run_id == run2
    a2 = letters["A2"]
    assert (a2.status, a2.stage, a2.error, a2.payload) == (
        "open", "validate", "bad vat", {"Id": "A2", "Vat": "x"})  # parked -> open
    assert a2.created_at <= a2.updated_at and a2.updated_at.tzinfo == dt.UTC

    # open -> parked when the new failure says so
    store.commit_batch(_batch(run2, dead_letters=[
        NewDeadLetter("parked", "A1", "parent missing", {"Id": "A1"})]))
    assert store.get_dead_letter(letters["A1"].id).status == "parked"
    assert store.count_dead_letters("accounts", status=["open", "parked"]) == 2

    result = store.commit_batch(_batch(run2, resolved_keys=["A1", "A2", "never-failed"]))
    assert result.resolved == 2
    assert store.count_dead_letters("accounts") == 0
    assert store.count_dead_letters("accounts", status="resolved") == 2

    # failing again after resolution opens a new entry
    later = store.commit_batch(_batch(run2, dead_letters=[
        NewDeadLetter("write", "A1", "ERP said no", {"Id": "A1"})]))
    assert later.dead_letters[0].new
    assert store.count_dead_letters("accounts", status=None) == 3


def test_dead_letters_of_other_flows_are_separate(store):
    run_id = store.start_run("accounts", "incremental")
    store.commit_batch(_batch(run_id, dead_letters=[NewDeadLetter("map", "K", "e", {})]))
    store.commit_batch(BatchCommit(run_id=run_id, flow="contacts",
                                   dead_letters=[NewDeadLetter("map", "K", "e", {})]))
    store.commit_batch(BatchCommit(run_id=run_id, flow="contacts", resolved_keys=["K"]))
    assert store.count_dead_letters("accounts") == 1
    assert store.count_dead_letters("contacts") == 0


def test_dead_letter_keeps_the_true_payload_and_redacts_only_credentials(store):
    """Business data is stored as read; only credentials in the error are masked."""
    from crm2erp.redact import register_secret

    register_secret("conn-secret-4711")
    note = "Portal password=hunter2; API token: tok-123"
    run_id = store.start_run("accounts", "incremental")
    store.commit_batch(_batch(run_id, dead_letters=[NewDeadLetter(
        "write", "A1", "POST https://bot:hunter22@erp.example/api?api_key=k9&x=1 failed "
        "with conn-secret-4711",
        {"Id": "A1", "api_key": "abc123", "token": 987654, "Amount": Decimal("1.10"),
         "note": note})]))
    letter = store.dead_letters("accounts")[0]
    assert "hunter22" not in letter.error and "erp.example" in letter.error
    assert "k9" not in letter.error and "x=1" in letter.error
    assert "conn-secret-4711" not in letter.error
    assert letter.payload == {"Id": "A1", "api_key": "abc123", "token": 987654,
                              "Amount": "1.10", "note": note}


def test_dead_letter_listing_and_status_changes(store):
    from crm2erp.errors import ConfigError

    run_id = store.start_run("accounts", "incremental")
    result = store.commit_batch(_batch(run_id, dead_letters=[
        NewDeadLetter("map", f"K{i}", "e", {"i": i}) for i in range(5)]))
    ids = [w.id for w in result.dead_letters]
    assert [d.source_key for d in store.dead_letters(limit=3)] == ["K0", "K1", "K2"]
    assert store.set_dead_letter_status(ids[:2], "discarded") == 2
    assert store.set_dead_letter_status([], "discarded") == 0
    assert store.count_dead_letters() == 3
    assert store.count_dead_letters(status="discarded") == 2
    assert store.get_dead_letter(ids[0]).status == "discarded"
    with pytest.raises(ConfigError, match="no dead letter #999999"):
        store.get_dead_letter(999999)
    with pytest.raises(ValueError, match="dead letter status"):
        store.set_dead_letter_status(ids, "gone")


def test_retrying_entry_is_updated_by_a_new_failure(store):
    run_id = store.start_run("accounts", "retry")
    first = store.commit_batch(_batch(run_id, dead_letters=[NewDeadLetter("map", "A1", "e", {})]))
    store.set_dead_letter_status([first.dead_letters[0].id], "retrying")
    again = store.commit_batch(_batch(run_id, dead_letters=[NewDeadLetter("map", "A1", "e", {})]))
    assert not again.dead_letters[0].new
    letter = store.get_dead_letter(first.dead_letters[0].id)
    assert (letter.status, letter.attempts) == ("open", 2)


def test_run_counters_accumulate_across_batches(store):
    run_id = store.start_run("accounts", "incremental")
    other = store.start_run("contacts", "full_refresh")
    store.commit_batch(_batch(run_id, counts={"read": 10, "created": 7, "unchanged": 3}))
    store.commit_batch(_batch(run_id, counts={"read": 5, "updated": 2, "failed": 1,
                                              "parked": 1, "skipped": 1, "deleted": 0}))
    run = store.get_run(run_id)
    assert run.counts == {"read": 15, "created": 7, "updated": 2, "unchanged": 3,
                          "skipped": 1, "failed": 1, "parked": 1, "deleted": 0}
    assert store.get_run(other).read == 0


def test_watermarks(store):
    run_id = store.start_run("accounts", "incremental")
    assert store.get_watermark("accounts", "Account") is None
    store.commit_batch(_batch(run_id, watermark=("Account", Cursor("2024-05-01T10:00:00Z", "A7"))))
    store.commit_batch(_batch(run_id, watermark=("Contact", Cursor(42))))
    store.commit_batch(_batch(run_id, watermark=("Account", Cursor("2024-05-02T10:00:00Z", "A9"))))
    assert store.get_watermark("accounts", "Account") == Cursor("2024-05-02T10:00:00Z", "A9")
    assert store.get_watermark("accounts", "Contact") == Cursor(42, None)
    assert store.get_watermark("contacts", "Account") is None

    assert store.reset_watermark("accounts", "Contact") == 1
    assert store.get_watermark("accounts", "Contact") is None
    assert store.get_watermark("accounts", "Account") is not None
    store.commit_batch(_batch(run_id, watermark=("Contact", Cursor(43))))
    assert store.reset_watermark("accounts") == 2
    assert store.get_watermark("accounts", "Account") is None


def test_large_dead_letter_payload_fits(store):
    """A record with many children is bigger than MariaDB's 64 KiB TEXT."""
    run_id = store.start_run("accounts", "incremental")
    lines = [{"line": i, "text": "x" * 100} for i in range(1000)]  # ~120 KiB of JSON
    store.commit_batch(_batch(run_id, dead_letters=[
        NewDeadLetter("write", "A1", "too big? " + "e" * 70_000, {"Id": "A1", "lines": lines})]))
    letter = store.dead_letters("accounts")[0]
    assert letter.payload["lines"] == lines
    assert len(letter.error) == len("too big? ") + 70_000


def test_rows_with_the_same_key_in_one_upsert_leave_the_last_one(store):
    """Of rows sharing a key in one call, the last is stored, on every database (on
    PostgreSQL one INSERT ... SELECT may not update a row twice, so the stage holds the
    last of each key)."""
    from crm2erp.store.batch import upsert
    from crm2erp.store.tables import watermarks

    at = dt.datetime(2026, 12, 8, tzinfo=dt.UTC)
    rows = [{"flow": "f", "stream": s, "value": v, "key": None, "updated_at": at,
             "run_id": None} for s, v in (("a", "1"), ("b", "2"), ("a", "3"), ("c", "4"),
                                         ("a", "5"))]
    with store.engine.begin() as conn:
        upsert(conn, watermarks, rows, key=("flow", "stream"), update=("value",))
    with store.engine.connect() as conn:
        held = dict(conn.execute(sa.select(watermarks.c.stream, watermarks.c.value)).all())
    assert held == {"a": "5", "b": "2", "c": "4"}

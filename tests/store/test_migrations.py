"""The schema comes from the packaged Alembic migrations, on every database."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from crm2erp.store import StateStore, XrefUpsert, migrate
from crm2erp.store.migrations import LEGACY_VERSION_TABLE, VERSION_TABLE
from crm2erp.store.records import BatchCommit
from crm2erp.store.tables import metadata

TABLES = {"runs", "watermarks", "xref", "dead_letters", "locks"}


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_open_migrates_to_head_and_reopen_is_a_noop(any_db_url):
    store = StateStore.open(any_db_url)
    try:
        assert TABLES <= _tables(store.engine)
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        run_id = store.start_run("accounts", "incremental")
    finally:
        store.close()

    again = StateStore.open(any_db_url)
    try:
        assert migrate.current_revision(again.engine) == migrate.head_revision()
        assert again.get_run(run_id).flow == "accounts"  # data survived the second open
    finally:
        again.close()


def test_downgrade_base_then_upgrade_head(any_store_url):
    store = StateStore.open(any_store_url)   # a copy of a migrated store
    try:
        migrate.downgrade(store.engine, "base")
        assert not (TABLES & _tables(store.engine))
        assert migrate.current_revision(store.engine) is None
        migrate.upgrade(store.engine, "head")
        assert TABLES <= _tables(store.engine)
        assert store.list_runs() == []
    finally:
        store.close()


def test_migrated_schema_matches_the_metadata(any_template_url):
    """The hand-written migration and tables.py describe the same schema (of a store
    StateStore.open migrated from an empty database)."""
    store = StateStore.open(any_template_url)   # at head already: read only
    try:
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "version_table": VERSION_TABLE})
            diff = compare_metadata(context, metadata)
        assert diff == []
    finally:
        store.close()


def test_external_ids_are_case_sensitive(any_store_url):
    """MariaDB's default collation would make these two ids one unique key (the
    store is a copy of a migrated one, its CREATE TABLEs with their collations)."""
    store = StateStore.open(any_store_url)
    try:
        run_id = store.start_run("accounts", "incremental")
        store.commit_batch(BatchCommit(run_id=run_id, flow="accounts", xref=[
            XrefUpsert("account", "sf", "0015g00000AbC", "c-upper"),
            XrefUpsert("account", "sf", "0015g00000abc", "c-lower"),
            XrefUpsert("account", "sf", "0015g00000abc ", "c-space"),
        ]))
        assert store.canonical_ids("account", "sf", ["0015g00000AbC", "0015g00000abc"]) == {
            "0015g00000AbC": "c-upper", "0015g00000abc": "c-lower"}
        assert store.xref_count("account", "sf") == 3
    finally:
        store.close()


# a process that opens (and closes) a store at each URL it reads, ready before it is told
_OPENER = """
import sys, traceback
from crm2erp.store import StateStore
print("ready", flush=True)
for line in sys.stdin:
    try:
        StateStore.open(line.strip()).close()
    except BaseException:
        traceback.print_exc(file=sys.stdout)
        print("failed", flush=True)
    else:
        print("opened", flush=True)
"""


@pytest.fixture(scope="module")
def openers() -> Iterator[list[subprocess.Popen]]:
    """Three processes with crm2erp imported, for every database of the module:
    each test pays no interpreter start, and the three start opening together."""
    procs = [subprocess.Popen([sys.executable, "-c", _OPENER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(3)]
    try:
        assert [proc.stdout.readline() for proc in procs] == ["ready\n"] * 3
        yield procs
    finally:
        for proc in procs:
            proc.stdin.close()
        for proc in procs:
            proc.wait(timeout=60)


def _answer(proc: subprocess.Popen) -> list[str]:
    """What ``proc`` printed for one URL, its last line ``opened`` or ``failed``."""
    lines = [proc.stdout.readline()]
    while lines[-1] not in ("opened\n", "failed\n", ""):
        lines.append(proc.stdout.readline())
    return lines


def test_concurrent_first_opens_all_succeed(any_db_url, openers):
    """Several processes starting on a fresh store: one migrates, none fails."""
    for proc in openers:
        proc.stdin.write(any_db_url + "\n")
    for proc in openers:
        proc.stdin.flush()
    with ThreadPoolExecutor(3) as pool:
        outputs = [answer.result(timeout=120) for answer in
                   [pool.submit(_answer, proc) for proc in openers]]
    assert [lines[-1] for lines in outputs] == ["opened\n"] * 3, outputs
    store = StateStore.open(any_db_url)
    try:
        assert migrate.current_revision(store.engine) == migrate.head_revision()
    finally:
        store.close()


def test_threads_opening_a_fresh_store_at_once(any_db_url):
    """Alembic's context is process-global: migrations in threads must not interleave."""
    barrier = threading.Barrier(3)

    def open_store(_):
        barrier.wait()
        store = StateStore.open(any_db_url)
        store.close()
        return True

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(open_store, range(3))) == [True] * 3


def _versions(engine: sa.Engine, table: str) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(f"SELECT version_num FROM {table}")).scalars())


def test_the_revision_lives_in_the_stores_own_version_table(any_template_url):
    """In a store StateStore.open migrated from an empty database."""
    store = StateStore.open(any_template_url)   # at head already: read only
    try:
        assert VERSION_TABLE in _tables(store.engine)
        assert LEGACY_VERSION_TABLE not in _tables(store.engine)
        assert _versions(store.engine, VERSION_TABLE) == [migrate.head_revision()]
    finally:
        store.close()


def test_a_store_with_the_old_alembic_version_table_is_moved_over_and_keeps_its_data(
        any_store_url):
    """A store made before the version table was renamed: its crm2erp revision
    sits in ``alembic_version``. Opening it moves the revision, keeps every row
    and runs the migrations it still lacks."""
    store = StateStore.open(any_store_url)   # a copy of a migrated store
    previous = "0005"
    try:
        run_id = store.start_run("accounts", "incremental")
        store.commit_batch(BatchCommit(run_id=run_id, flow="accounts", xref=[
            XrefUpsert("account", "sf", "001A", "c-1")]))
        migrate.downgrade(store.engine, previous)  # the old schema, data kept
        with store.engine.begin() as conn:  # as an older crm2erp left it
            conn.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
            conn.execute(sa.text(f"CREATE TABLE {LEGACY_VERSION_TABLE} "
                                 "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
            conn.execute(sa.text(f"INSERT INTO {LEGACY_VERSION_TABLE} VALUES (:v)"),
                         {"v": previous})
    finally:
        store.close()

    again = StateStore.open(any_store_url)
    try:
        assert LEGACY_VERSION_TABLE not in _tables(again.engine)
        assert _versions(again.engine, VERSION_TABLE) == [migrate.head_revision()]
        assert again.get_run(run_id).flow == "accounts"
        assert again.canonical_ids("account", "sf", ["001A"]) == {"001A": "c-1"}
    finally:
        again.close()


def test_another_applications_alembic_version_is_left_alone(any_db_url):
    """Airflow's metadata DB has ``alembic_version`` with Airflow's revision."""
    engine = sa.create_engine(any_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE TABLE {LEGACY_VERSION_TABLE} "
                                 "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
            conn.execute(sa.text(f"INSERT INTO {LEGACY_VERSION_TABLE} VALUES ('29ce7909c52b')"))
    finally:
        engine.dispose()
    store = StateStore.open(any_db_url)
    try:
        assert _versions(store.engine, LEGACY_VERSION_TABLE) == ["29ce7909c52b"]
        assert _versions(store.engine, VERSION_TABLE) == [migrate.head_revision()]
        assert TABLES <= _tables(store.engine)
    finally:
        store.close()


def _text_memory_table() -> sa.TableClause:
    """canonical_records as revisions 0003 to 0008 made it: data and field_times in JSON."""
    from crm2erp.store.types import UTCDateTime

    return sa.table("canonical_records", sa.column("entity"), sa.column("canonical_id"),
                    sa.column("data"), sa.column("field_times"),
                    sa.column("updated_at", UTCDateTime()), sa.column("run_id"))


def test_hub_memory_of_the_earlier_formats_is_converted_to_the_compact_one(any_store_at):
    """Migration 0008 rewrites canonical records stored in formats 0, 1 and 2 (more
    than one batch of them) and shortens xref payload hashes; what the memory means
    (who changed a field, what a system last sent) is the same afterwards."""
    import datetime as dt
    import hashlib
    import json

    from crm2erp.engine.memory import FieldMemory, settle
    from crm2erp.jsonutil import dumps, payload_hash, short_hash
    from crm2erp.store.types import UTCDateTime

    at = "2026-01-01T00:00:00+00:00"
    xref = sa.table("xref", *(sa.column(name) for name in (   # hashes as text before 0010
        "entity", "system", "external_id", "canonical_id", "payload_hash")),
        sa.column("updated_at", UTCDateTime()))
    canonical_records = _text_memory_table()   # 0009 packs its two JSON columns into one

    def sha256(value):
        return hashlib.sha256(dumps(value).encode()).hexdigest()

    data = {"status": "invoiced", "name": "Acme", "fax": None, "address": {"zip": None}}
    v1 = {"status": {"by": "erp", "at": at, "seen": {"crm": sha256("confirmed"),
                                                       "erp": sha256("invoiced")}},
          "name": {"by": "crm", "at": at, "seen": {"crm": sha256("Acme")}}}
    v2 = {"v": 2, "w": [["crm", at], ["erp", at]],
          "f": {"name": [0, {"crm": short_hash("Acme")}],
                "status": [1, {"crm": short_hash("confirmed"), "erp": short_hash("invoiced")}]}}
    v0 = {"status": ["erp", at], "name": ["crm", at]}
    formats = {"v0": v0, "v1": v1, "v2": v2}
    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    url = any_store_at("0007")
    _written_at(url, (canonical_records, [
        {"entity": "Account", "canonical_id": f"{name}-{n:04d}", "data": json.dumps(data),
         "field_times": json.dumps(times), "updated_at": now, "run_id": 1}
        for name, times in formats.items() for n in range(400)]), (xref, [
            {"entity": "Account", "system": "crm", "external_id": "A1", "canonical_id": "c",
             "payload_hash": sha256({"a": 1}), "updated_at": now},
            {"entity": "Account", "system": "erp", "external_id": "1", "canonical_id": "c",
             "payload_hash": "_crm2erp_deleted:soft", "updated_at": now}]))
    store = StateStore.open(url)   # migrates 0008 to head
    try:
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        states = {name: store.canonical_states("Account", [f"{name}-{n:04d}" for n in (0, 399)])
                  for name in formats}
        assert {s.field_times["v"] for found in states.values() for s in found.values()} == {3}
        for name, found in states.items():
            assert len(found) == 2
            state = found[f"{name}-0399"]
            assert state.data == {"status": "invoiced", "name": "Acme"}   # unset nulls gone
            memory = FieldMemory(state)
            assert memory.pair("status") == ("erp", at) and memory.pair("name") == ("crm", at)
            assert memory.pair("fax") == (None, None)
            # the CRM still sending its old status is no news where it was remembered
            again = settle(entity="Account", canonical_id=state.canonical_id, system="crm",
                           mapped_paths=["status"], new={"status": "confirmed"}, state=state,
                           ownership={}, rule="ownership", changed_at=now)
            assert again.has_news is (name == "v0")
        assert "s" not in states["v0"]["v0-0000"].field_times
        assert states["v1"]["v1-0000"].field_times["s"] == {
            "status": {"crm": sha256("confirmed")[:32]}}   # sha256's first 128 bits
        entries = store.xref_entries("Account", "crm", ["A1"])
        # cut by 0008 to 128 bits, by 0014 to 64: what crm2erp computes now
        assert entries["A1"].payload_hash == payload_hash({"a": 1}) == sha256({"a": 1})[:16]
        assert store.xref_entries("Account", "erp", ["1"])["1"].payload_hash == \
            "_crm2erp_deleted:soft"
    finally:
        store.close()


def test_hub_memory_in_json_text_is_packed_and_unpacked_again(any_store_at):
    """Migration 0009 packs each record's JSON data and field times into one compressed
    value (more than one batch of rows); the store reads the same memory back, and a
    downgrade restores the two JSON columns as they were."""
    import datetime as dt

    from crm2erp.jsonutil import dumps

    records = _text_memory_table()
    times = {"v": 3, "by": "crm", "at": "2026-01-01T00:00:00+00:00", "f": {"status": None},
             "s": {"name": {"erp": "0123456789abcdef"}}}
    rows = [{"entity": "Account", "canonical_id": f"c-{n:04d}",
             "data": dumps({"name": f"Müller {n} GmbH", "status": "active",
                            "billing_address": {"city": "Köln", "country": "DE"},
                            "lines": [{"sku": "A", "quantity": n}]}),
             "field_times": dumps(times), "updated_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
             "run_id": 7} for n in range(1001)]
    url = any_store_at("0008")
    _written_at(url, (records, rows))
    store = StateStore.open(url)   # migrates 0009 to head
    try:
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        found = store.canonical_states("Account", ["c-0000", "c-1000"])
        assert found["c-1000"].data == {"name": "Müller 1000 GmbH", "status": "active",
                                        "billing_address": {"city": "Köln", "country": "DE"},
                                        "lines": [{"sku": "A", "quantity": 1000}]}
        assert found["c-0000"].field_times == times
        assert len(list(store.iter_canonical_states("Account"))) == 1001
        migrate.downgrade(store.engine, "0008")
        with store.engine.connect() as conn:
            back = {r.canonical_id: (r.data, r.field_times)
                    for r in conn.execute(sa.select(records))}
        assert back == {r["canonical_id"]: (r["data"], r["field_times"]) for r in rows}
        migrate.upgrade(store.engine, "head")
    finally:
        store.close()


HASHES = ["0123456789abcdef0123456789abcdef",    # a 128-bit digest: stored as 16 bytes
          "_crm2erp_deleted:soft",               # a deletion mark
          "0123456789ABCDEF0123456789ABCDEF",    # upper case: text, kept as it was
          "abcdefghijklmno", "abcdefghijklmnop", "ü" * 8, "", None]


def _cut(hashed: str | None) -> str | None:
    """A stored 128-bit digest as migration 0014 leaves it: its first 64 bits."""
    if hashed is not None and len(hashed) == 32 and hashed == hashed.lower():
        return hashed[:16]
    return hashed


def test_payload_hashes_are_stored_as_bytes_and_read_back_as_the_same_text(any_store_at):
    """Migration 0010 turns the xref's text hashes into bytes (a hex digest in 16);
    the store hands out the text it had, and a downgrade restores the text column."""
    import datetime as dt

    from crm2erp.store.types import UTCDateTime

    text_xref = sa.table("xref", *(sa.column(name) for name in (
        "id", "entity", "system", "external_id", "canonical_id", "payload_hash")),
        sa.column("updated_at", UTCDateTime()))
    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    rows = [{"entity": "Account", "system": "erp", "external_id": f"{n:04d}",
             "canonical_id": f"c{n}", "payload_hash": HASHES[n % len(HASHES)],
             "updated_at": now} for n in range(1010)]
    url = any_store_at("0009")
    _written_at(url, (text_xref, rows))
    store = StateStore.open(url)   # migrates 0010 to head
    try:
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        ids = [row["external_id"] for row in rows]
        entries = store.xref_entries("Account", "erp", ids)
        assert {ext: e.payload_hash for ext, e in entries.items()} == {
            row["external_id"]: _cut(row["payload_hash"]) for row in rows}
        with store.engine.connect() as conn:
            raw = conn.execute(sa.text("SELECT payload_hash FROM xref WHERE external_id = '0000'")
                               ).scalar_one()
        assert bytes(raw) == bytes.fromhex(HASHES[0])[:8]   # 16 bytes from 0010, 8 from 0014
        migrate.downgrade(store.engine, "0009")
        with store.engine.connect() as conn:
            back = dict(conn.execute(sa.select(text_xref.c.external_id,
                                               text_xref.c.payload_hash)).all())
        assert back == {row["external_id"]: _cut(row["payload_hash"]) for row in rows}
        migrate.upgrade(store.engine, "head")
    finally:
        store.close()


def test_a_digest_is_8_bytes_and_any_other_text_comes_back_as_it_was():
    from crm2erp.jsonutil import payload_hash
    from crm2erp.store.types import WIDE_DIGEST_BYTES, digest_bytes, digest_text

    digest = payload_hash({"a": 1})
    assert len(digest) == 16 and digest_bytes(digest) == bytes.fromhex(digest)
    assert digest_text(bytes.fromhex(digest)) == digest
    # "abcdefg" framed would be 8 bytes, the length of a packed digest: framed longer
    for text in [*HASHES[:-1], "abcdefg", "0123456789abcde", "0123456789abcdef0"]:
        stored = digest_bytes(text)
        assert len(stored) != 8 and digest_text(stored) == text
        assert digest_text(memoryview(stored)) == text
    # the 128-bit form of revisions 0010 to 0013, which their migrations read and write
    assert len(digest_bytes(HASHES[0], WIDE_DIGEST_BYTES)) == 16
    for text in [*HASHES[1:-1], digest]:
        stored = digest_bytes(text, WIDE_DIGEST_BYTES)
        assert len(stored) != 16 and digest_text(stored, WIDE_DIGEST_BYTES) == text


CANONICAL_IDS = ["d4dfd0ee-d0ff-5f4d-ad62-4fd0c73bceb0",   # a uuid: stored as 16 bytes
                 "D4DFD0EE-D0FF-5F4D-AD62-4FD0C73BCEB0",   # upper case: text, kept as it was
                 "c-1", "abcdefghijklmno", "ü" * 8, "x" * 191, ""]


def test_a_uuid_canonical_id_is_16_bytes_and_any_other_id_comes_back_as_it_was():
    from crm2erp.store.types import canonical_id_bytes, canonical_id_text

    assert canonical_id_bytes(CANONICAL_IDS[0]) == bytes.fromhex(
        CANONICAL_IDS[0].replace("-", ""))
    for text in CANONICAL_IDS[1:]:
        stored = canonical_id_bytes(text)
        assert len(stored) != 16 and canonical_id_text(stored) == text
        assert canonical_id_text(memoryview(stored)) == text


def _written_at(url: str, *rows: tuple[sa.TableClause, list]) -> None:
    """Rows written into the tables of a database at an old revision (from
    ``any_store_at``) as that revision left them; opening a store on it then
    migrates them to the newest schema."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for table, values in rows:
                conn.execute(table.insert(), values)
    finally:
        engine.dispose()


def _without_times(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("updated_at", "run_id")}


def test_xref_and_hub_memory_keep_their_values_through_0011_up_and_down(any_store_at):
    """Migration 0011 rebuilds xref (keyed by entity, system, external id; no
    surrogate id) and canonical_records with binary canonical ids and, on SQLite,
    integer timestamps: the store reads back every value written before it (more than
    a batch of rows), and a downgrade to 0010 gives the same rows in the old columns."""
    import datetime as dt

    from crm2erp.store.fieldmemory import encode
    from crm2erp.store.types import UTCDateTime, WideDigest

    old_xref = sa.table("xref", *(sa.column(name) for name in (
        "id", "entity", "system", "external_id", "canonical_id", "run_id")),
        sa.column("payload_hash", WideDigest()), sa.column("updated_at", UTCDateTime()))
    old_records = sa.table("canonical_records", *(sa.column(name) for name in (
        "entity", "canonical_id", "memory", "run_id")), sa.column("updated_at", UTCDateTime()))
    start = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)

    def canonical(n: int) -> str:
        return CANONICAL_IDS[n] if n < len(CANONICAL_IDS) else f"{n:08x}-0000-5000-8000-{n:012x}"

    def when(n: int) -> dt.datetime:
        return start + dt.timedelta(days=n, microseconds=n)

    xref_rows = [{"entity": "Account", "system": system, "external_id": f"{system}-{n:04d}",
                  "canonical_id": canonical(n), "payload_hash": HASHES[n % len(HASHES)],
                  "updated_at": when(n), "run_id": n % 3 or None}
                 for n in range(1010) for system in ("crm", "erp")]
    memory_rows = [{"entity": "Account", "canonical_id": canonical(n),
                    "memory": encode({"name": f"Acme {n}"}, {"v": 3}),
                    "updated_at": when(n), "run_id": 7} for n in range(1010)]
    url = any_store_at("0010")
    _written_at(url, (old_xref, xref_rows), (old_records, memory_rows))
    store = StateStore.open(url)   # migrates 0011 to head
    try:
        assert migrate.current_revision(store.engine) == migrate.head_revision()

        for system in ("crm", "erp"):
            wanted = [r for r in xref_rows if r["system"] == system]
            entries = store.xref_entries("Account", system, [r["external_id"] for r in wanted])
            assert {ext: (e.canonical_id, e.payload_hash) for ext, e in entries.items()} == {
                r["external_id"]: (r["canonical_id"], _cut(r["payload_hash"])) for r in wanted}
        states = store.canonical_states("Account", [r["canonical_id"] for r in memory_rows])
        assert {cid: s.data for cid, s in states.items()} == {
            r["canonical_id"]: {"name": f"Acme {n}"} for n, r in enumerate(memory_rows)}
        assert store.external_ids("Account", "erp", CANONICAL_IDS) == {
            cid: f"erp-{n:04d}" for n, cid in enumerate(CANONICAL_IDS)}
        with store.engine.connect() as conn:
            raw = conn.execute(sa.text("SELECT canonical_id FROM canonical_records "
                                       "WHERE canonical_id = :c"),
                               {"c": bytes.fromhex(CANONICAL_IDS[0].replace("-", ""))}
                               ).scalar_one()
            assert bytes(raw) == bytes.fromhex(CANONICAL_IDS[0].replace("-", ""))
            assert "id" not in {c["name"] for c in sa.inspect(conn).get_columns("xref")}
            if conn.dialect.name == "sqlite":
                assert "WITHOUT ROWID" in conn.execute(sa.text(
                    "SELECT sql FROM sqlite_schema WHERE name = 'xref'")).scalar_one()

        migrate.downgrade(store.engine, "0010")
        with store.engine.connect() as conn:
            back_xref = [row._asdict() for row in conn.execute(
                sa.select(*(c for c in old_xref.c if c.name != "id")))]
            back_records = [row._asdict() for row in conn.execute(sa.select(old_records))]
            ids = conn.execute(sa.select(old_xref.c.id)).scalars().all()
        key = "{0[system]}{0[external_id]}".format
        # 0014 dropped the times and run ids: its downgrade gives the time it ran, no run
        assert sorted(map(_without_times, back_xref), key=key) == sorted(
            ({**_without_times(r), "payload_hash": _cut(r["payload_hash"])} for r in xref_rows),
            key=key)
        assert sorted(map(_without_times, back_records), key=lambda r: r["canonical_id"]) == \
            sorted(map(_without_times, memory_rows), key=lambda r: r["canonical_id"])
        assert len({r["updated_at"] for r in back_xref + back_records}) == 1
        assert {r["run_id"] for r in back_xref + back_records} == {None}
        assert sorted(ids) == list(range(1, len(xref_rows) + 1))
        migrate.upgrade(store.engine, "head")
        assert store.canonical_ids("Account", "crm", ["crm-0000"]) == {
            "crm-0000": CANONICAL_IDS[0]}
    finally:
        store.close()


def test_xref_canonical_index_narrows_through_0012_up_down_and_up(any_store_url):
    """Migration 0012 looks canonical ids up through an index on canonical_id alone
    instead of (entity, system, canonical_id); down and up again, the look-ups by
    external and by canonical id give the rows written, for each entity and system."""
    from crm2erp.store.types import canonical_id_bytes

    def indexes(store: StateStore) -> dict[str, list[str]]:
        return {ix["name"]: ix["column_names"]
                for ix in sa.inspect(store.engine).get_indexes("xref")}

    store = StateStore.open(any_store_url)   # a copy of a migrated store
    try:
        run_id = store.start_run("accounts", "incremental")
        store.commit_batch(BatchCommit(run_id=run_id, flow="accounts", xref=[
            XrefUpsert(entity, system, f"{system}-{entity}-{n}", f"{entity}-c-{n:04d}")
            for n in range(1200) for system in ("crm", "erp")
            for entity in ("Account", "Contact")]))

        def read_back() -> None:
            for entity in ("Account", "Contact"):
                wanted = [f"{entity}-c-{n:04d}" for n in range(0, 1200, 7)] + ["nope"]
                assert store.external_ids(entity, "erp", wanted) == {
                    f"{entity}-c-{n:04d}": f"erp-{entity}-{n}" for n in range(0, 1200, 7)}
                found = store.xref_entries(entity, "crm", [f"crm-{entity}-{n}"
                                                           for n in range(1200)])
                assert {e.canonical_id for e in found.values()} == {
                    f"{entity}-c-{n:04d}" for n in range(1200)}

        assert indexes(store)["ix_xref_canonical_id"] == ["canonical_id"]
        assert "ix_xref_entity_system_canonical_id" not in indexes(store)
        read_back()
        migrate.downgrade(store.engine, "0011")
        assert indexes(store)["ix_xref_entity_system_canonical_id"] == [
            "entity", "system", "canonical_id"]
        assert "ix_xref_canonical_id" not in indexes(store)
        with store.engine.connect() as conn:   # the code reads the newest schema only
            rows = conn.execute(sa.text(
                "SELECT entity, system, external_id FROM xref "
                "WHERE entity = 'Contact' AND system = 'erp' AND canonical_id = :c"),
                {"c": canonical_id_bytes("Contact-c-0007")}).all()
            assert [tuple(r) for r in rows] == [("Contact", "erp", "erp-Contact-7")]
            assert conn.execute(sa.text("SELECT count(*) FROM xref")).scalar_one() == 4800
        migrate.upgrade(store.engine, "head")
        assert indexes(store)["ix_xref_canonical_id"] == ["canonical_id"]
    finally:
        store.close()
    store = StateStore.open(any_store_url)   # names numbered anew by the upgrade
    try:
        read_back()
    finally:
        store.close()


def test_entity_and_system_names_become_numbers_through_0013_up_down_and_up(any_store_at):
    """Migration 0013 numbers entity and system names (table names) in xref and
    canonical_records: every row written at 0012 (more than one entity and system)
    reads back through the store at head; a downgrade gives the same rows with their
    names again, and an upgrade after it numbers them anew."""
    import datetime as dt

    from crm2erp.store.fieldmemory import encode
    from crm2erp.store.types import UTCMicros, WideDigest, canonical_id_bytes

    at = dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC)
    old_xref = sa.table("xref", *(sa.column(n) for n in (
        "entity", "system", "external_id", "run_id")),
        sa.column("canonical_id"), sa.column("payload_hash", WideDigest()),
        sa.column("updated_at", UTCMicros()))
    old_records = sa.table("canonical_records", sa.column("entity"),
                           sa.column("canonical_id"), sa.column("memory"),
                           sa.column("updated_at", UTCMicros()), sa.column("run_id"))
    xref_rows = [{"entity": entity, "system": system, "external_id": f"{system}-{n}",
                  "canonical_id": canonical_id_bytes(f"{entity}-{n:04d}"),
                  "payload_hash": HASHES[n % len(HASHES)],
                  "updated_at": at + dt.timedelta(seconds=n), "run_id": n % 3 or None}
                 for n in range(1010) for system in ("crm", "erp")
                 for entity in ("Account", "Contact")]
    record_rows = [{"entity": entity, "canonical_id": canonical_id_bytes(f"{entity}-{n:04d}"),
                    "memory": encode({"name": f"{entity} {n}"}, {"v": 3}),
                    "updated_at": at, "run_id": 4}
                   for n in range(1010) for entity in ("Account", "Contact")]

    # 0014 dropped the times and run ids and cut the hashes: compared without them
    def old_rows(conn: sa.Connection) -> tuple[list, list]:
        xref_back = sorted(tuple(r)[:3] + (bytes(r.canonical_id), r.payload_hash)
                           for r in conn.execute(sa.select(old_xref)))
        records_back = sorted((*r[:2], bytes(r.memory))
                              for r in conn.execute(sa.select(old_records)))
        return xref_back, records_back

    before = (sorted((*(row[c] for c in ("entity", "system", "external_id", "canonical_id")),
                      _cut(row["payload_hash"])) for row in xref_rows),
              sorted((row["entity"], row["canonical_id"], row["memory"]) for row in record_rows))

    url = any_store_at("0012")
    _written_at(url, (old_xref, xref_rows), (old_records, record_rows))

    def read_back() -> None:
        again = StateStore.open(url)   # the first one migrates 0013 to head
        try:
            for entity in ("Account", "Contact"):
                for system in ("crm", "erp"):
                    found = again.xref_entries(entity, system,
                                               [f"{system}-{n}" for n in range(1010)])
                    assert {ext: (e.canonical_id, e.payload_hash)
                            for ext, e in found.items()} == {
                        f"{system}-{n}": (f"{entity}-{n:04d}", _cut(HASHES[n % len(HASHES)]))
                        for n in range(1010)}
                states = again.canonical_states(entity, [f"{entity}-{n:04d}"
                                                         for n in range(1010)])
                assert {cid: s.data for cid, s in states.items()} == {
                    f"{entity}-{n:04d}": {"name": f"{entity} {n}"} for n in range(1010)}
            assert again.xref_count("Account", "erp") == 1010 and again.xref_count() == 4040
            with again.engine.connect() as conn:
                numbers = dict(conn.execute(sa.text("SELECT name, id FROM names")).all())
                assert set(numbers) == {"Account", "Contact", "crm", "erp"}
                assert "entity" not in {c["name"] for c in sa.inspect(conn).get_columns("xref")}
        finally:
            again.close()

    read_back()
    store = StateStore.open(url)
    try:
        migrate.downgrade(store.engine, "0012")
        with store.engine.connect() as conn:
            assert old_rows(conn) == before
            assert "names" not in sa.inspect(conn).get_table_names()
        migrate.upgrade(store.engine, "head")
    finally:
        store.close()
    read_back()


def test_times_go_and_hashes_are_cut_to_64_bits_through_0014_up_down_and_up(any_store_at):
    """Migration 0014 drops updated_at and run_id of xref and canonical_records and
    cuts the 128-bit payload hashes to their first 64 bits (8 bytes); deletion marks
    stay as they were, also one whose framed bytes are 8 long ("abcdefg"). Every row
    written at 0013 (more than a batch) reads back through the store at head; a
    downgrade gives the same rows (the hashes cut, as text; one time, no run), and an
    upgrade after it reads back the same again. On PostgreSQL the canonical-id index
    is a hash index."""
    import datetime as dt

    from crm2erp.store.fieldmemory import encode
    from crm2erp.store.types import UTCMicros, WideDigest, canonical_id_bytes

    hashes = [*HASHES, "abcdefg", "fifteen chars!!", "0123456789abcdef"]
    at = dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC)
    old_xref = sa.table("xref", *(sa.column(n) for n in (
        "entity_id", "system_id", "external_id", "run_id", "canonical_id")),
        sa.column("payload_hash", WideDigest()), sa.column("updated_at", UTCMicros()))
    old_records = sa.table("canonical_records", *(sa.column(n) for n in (
        "entity_id", "canonical_id", "memory", "run_id")), sa.column("updated_at", UTCMicros()))
    xref_rows = [{"entity_id": 1, "system_id": system, "external_id": f"{system}-{n}",
                  "canonical_id": canonical_id_bytes(f"c-{n:04d}"),
                  "payload_hash": hashes[n % len(hashes)],
                  "updated_at": at + dt.timedelta(seconds=n), "run_id": n % 3 or None}
                 for n in range(1010) for system in (2, 3)]
    record_rows = [{"entity_id": 1, "canonical_id": canonical_id_bytes(f"c-{n:04d}"),
                    "memory": encode({"name": f"Acme {n}"}, {"v": 3}), "updated_at": at,
                    "run_id": 4} for n in range(1010)]
    names = sa.table("names", sa.column("id"), sa.column("name"))

    def read_back(store: StateStore) -> None:
        for number, system in ((2, "crm"), (3, "erp")):
            found = store.xref_entries("Account", system, [f"{number}-{n}" for n in range(1010)])
            assert {ext: (e.canonical_id, e.payload_hash) for ext, e in found.items()} == {
                f"{number}-{n}": (f"c-{n:04d}", _cut(hashes[n % len(hashes)]))
                for n in range(1010)}
        assert store.external_ids("Account", "erp", ["c-0007", "nope"]) == {"c-0007": "3-7"}
        states = store.canonical_states("Account", [f"c-{n:04d}" for n in range(1010)])
        assert {cid: s.data for cid, s in states.items()} == {
            f"c-{n:04d}": {"name": f"Acme {n}"} for n in range(1010)}

    url = any_store_at("0013")
    _written_at(url, (names, [{"id": 1, "name": "Account"}, {"id": 2, "name": "crm"},
                              {"id": 3, "name": "erp"}]),
                (old_xref, xref_rows), (old_records, record_rows))
    store = StateStore.open(url)   # migrates 0014 to head
    try:
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        read_back(store)
        with store.engine.connect() as conn:
            for table in ("xref", "canonical_records"):
                columns = {c["name"] for c in sa.inspect(conn).get_columns(table)}
                assert not columns & {"updated_at", "run_id"}, table
            raw = dict(conn.execute(sa.text("SELECT external_id, payload_hash FROM xref")).all())
            assert bytes(raw["2-0"]) == bytes.fromhex(HASHES[0])[:8]
            assert len(bytes(raw[f"2-{len(HASHES)}"])) != 8   # "abcdefg", framed
            if conn.dialect.name == "postgresql":
                method = conn.execute(sa.text(
                    "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                    "WHERE c.relname = 'ix_xref_canonical_id'")).scalar_one()
                assert method == "hash"
        migrate.downgrade(store.engine, "0013")
        with store.engine.connect() as conn:
            back_xref = [r._asdict() for r in conn.execute(sa.select(old_xref))]
            back_records = [r._asdict() for r in conn.execute(sa.select(old_records))]
        key = "{0[system_id]}{0[external_id]}".format
        assert sorted(({**_without_times(r), "canonical_id": bytes(r["canonical_id"])}
                       for r in back_xref), key=key) == sorted(
            ({**_without_times(r), "payload_hash": _cut(r["payload_hash"])} for r in xref_rows),
            key=key)
        assert sorted((r["canonical_id"], bytes(r["memory"])) for r in back_records) == sorted(
            (r["canonical_id"], r["memory"]) for r in record_rows)
        assert len({r["updated_at"] for r in back_xref + back_records}) == 1
        assert {r["run_id"] for r in back_xref + back_records} == {None}
        migrate.upgrade(store.engine, "head")
        read_back(store)
    finally:
        store.close()

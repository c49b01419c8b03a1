"""The engine against a hand-written loop, in the same run, as ratios.

    python benchmarks/engine.py --records 10000 --repeat 3
    python benchmarks/engine.py --records 10000 --repeat 3 --db postgresql

The demo's CRM accounts (SQLite, messy: stray spaces, country names, phones
typed every which way, a few bad rows) go into the demo ERP's ``customers``
table with the demo pack's mappings. ``--db sqlite`` (the default) keeps the
ERP and the engine's state store in SQLite files; ``--db postgresql`` puts
both in a fresh PostgreSQL database per measurement series (``--pg-url``: a
server URL whose user may create databases). The floor is the same
transformation written by hand: a Python loop over the rows, the same
normalisation (collapse spaces, type code map, e-mail check, E.164 phones,
ISO countries) and one ``executemany`` upsert on ``crm_ref``.

Each measurement runs in its own process (peak RSS is that process's own);
engine and floor are interleaved, every scenario ``--repeat`` times, and
the table shows the medians: wall, CPU, peak RSS, records/s and the ratio
of the engine's wall time to the floor's full sync. At the end, the two
``customers`` tables are compared row for row, and the size on disk of the
engine's state store (its tables and indexes) is set beside the target table's.

Scenarios: a full sync into an empty ERP; a re-sync of unchanged data
(incremental, then ``--full-refresh``); an incremental run after 1% of the
accounts changed (the floor keeps a watermark too). After the full sync, "state rows
alone" times the database taking the rows the engine's state store then holds (xref and
hub memory, read back before the clock starts) into a fresh, migrated store: COPY on
PostgreSQL, ``executemany`` on SQLite, a commit every 500 rows as the engine's
batches, no upsert and nothing else: what keeping that state costs at the least.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

FLOW = """\
flow: bench_accounts
entity: Account
source: {connection: crm, stream: accounts, mapping: maps/crm_account.in.map.yaml}
target: {connection: erp, stream: customers, mapping: maps/erp_customer.out.map.yaml}
incremental: {cursor: updated_at, lookback: 5m, batch_size: 500}
"""

CONNECTIONS = """\
connections:
  crm:
    type: sql
    url: sqlite:///{dir}/crm.db
    streams:
      accounts: {{table: accounts, key: id, cursor: updated_at}}
  erp:
    type: sql
    url: {erp_url}
    streams:
      customers: {{table: customers, key: crm_ref, id_column: id}}
"""


# -- setting up ---------------------------------------------------------------------
def prepare(folder: Path, records: int, erp_url: str, state_url: str) -> None:
    """Two fresh systems, the engine's project and where its state goes, in ``folder``."""
    from crm2erp.demo.sample import sample_crm_rows
    from crm2erp.demo.systems import create_systems
    from crm2erp.mappings import pack_dir

    rows = sample_crm_rows(accounts=records)
    rows = {"accounts": rows["accounts"], "contacts": [], "deals": [], "deal_lines": []}
    create_systems(f"sqlite:///{folder / 'crm.db'}", erp_url, rows)
    project = folder / "project"
    (project / "maps").mkdir(parents=True)
    for name in ("crm_account.in.map.yaml", "erp_customer.out.map.yaml"):
        shutil.copy(pack_dir("demo") / "maps" / name, project / "maps" / name)
    (project / "connections.yaml").write_text(CONNECTIONS.format(dir=folder, erp_url=erp_url))
    (project / "bench.flow.yaml").write_text(FLOW)
    (folder / "urls.json").write_text(json.dumps({"erp": erp_url, "state": state_url}))


def urls(folder: Path) -> dict[str, str]:
    return json.loads((folder / "urls.json").read_text())


def fresh_database(server_url: str) -> str:
    """A new, empty PostgreSQL database on ``server_url``'s server; its URL."""
    import sqlalchemy as sa

    name = f"crm2erp_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(
        hide_password=False)


def drop_database(server_url: str, url: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        name = sa.engine.make_url(url).database
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def server_of(url: str) -> str:
    """The URL of the ``postgres`` database on ``url``'s server (for :func:`fresh_database`
    and :func:`drop_database`)."""
    import sqlalchemy as sa

    return sa.engine.make_url(url).set(database="postgres").render_as_string(
        hide_password=False)


def _erp_connection(erp_url: str):
    """A DB-API connection to the ERP and its parameter mark, without SQLAlchemy."""
    if erp_url.startswith("sqlite"):
        return sqlite3.connect(erp_url.removeprefix("sqlite:///")), "?"
    import psycopg
    import sqlalchemy as sa

    url = sa.engine.make_url(erp_url)
    return psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                           password=url.password, dbname=url.database), "%s"


def touch(folder: Path, percent: float) -> int:
    """Change the name of ``percent`` % of the CRM accounts (and their updated_at)."""
    with sqlite3.connect(folder / "crm.db") as db:
        total = db.execute("SELECT count(*) FROM accounts").fetchone()[0]
        step = max(1, round(100 / percent))
        db.execute("UPDATE accounts SET company_name = company_name || ' X', "
                   "updated_at = '2027-01-01 00:00:00.000000' WHERE rowid % ? = 0", (step,))
        return total // step


# -- the floor: the same transformation, by hand ------------------------------------
_TYPES = {"customer": "customer", "prospect": "prospect", "partner": "partner",
          "kunde": "customer"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _countries() -> dict[str, str]:
    from crm2erp.demo.sample import _PLACES  # the generator's own table of spellings

    return {typed.strip().lower(): iso for typed, iso, *_ in _PLACES}


def floor(folder: Path, watermark_file: Path | None) -> int:
    import phonenumbers

    countries = _countries()
    since = watermark_file.read_text() if watermark_file and watermark_file.exists() else ""
    crm = sqlite3.connect(folder / "crm.db")
    rows = crm.execute(
        "SELECT id, company_name, account_type, email, phone, street, zip, city, country, "
        "vat_id, currency, updated_at FROM accounts WHERE updated_at >= ? "
        "ORDER BY updated_at, id", (since,)).fetchall()
    out = []
    for (ref, name, kind, email, phone, street, zip_, city, country, vat, currency,
         _updated) in rows:
        name = " ".join((name or "").split())
        kind = _TYPES.get((kind or "").strip().lower())
        iso = countries.get((country or "").strip().lower())
        email = (email or "").strip().lower() or None
        if not name or kind is None or iso is None or (email and not _EMAIL.match(email)):
            continue    # what the engine dead-letters
        try:
            number = phonenumbers.parse(phone, iso) if phone else None
            phone = (phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                     if number is not None and phonenumbers.is_valid_number(number) else None)
        except phonenumbers.NumberParseException:
            continue
        out.append((ref, name, kind, email, phone, " ".join((street or "").split()) or None,
                    (zip_ or "").strip() or None, " ".join((city or "").split()) or None,
                    iso, (vat or "").strip().upper() or None,
                    (currency or "").strip().upper() or "EUR"))
    erp, mark = _erp_connection(urls(folder)["erp"])
    with erp:
        erp.cursor().executemany(
            "INSERT INTO customers (crm_ref, name, kind, email, phone, street, postal_code, "
            f"city, country, vat, currency) VALUES ({', '.join([mark] * 11)}) "
            "ON CONFLICT(crm_ref) DO UPDATE SET name=excluded.name, kind=excluded.kind, "
            "email=excluded.email, phone=excluded.phone, street=excluded.street, "
            "postal_code=excluded.postal_code, city=excluded.city, country=excluded.country, "
            "vat=excluded.vat, currency=excluded.currency", out)
    erp.close()
    if watermark_file is not None and rows:
        watermark_file.write_text(rows[-1][-1])
    return len(rows)


# -- the engine -----------------------------------------------------------------------
def engine(folder: Path, mode: str) -> int:
    from crm2erp.engine import Engine
    from crm2erp.mapping import load_project
    from crm2erp.store import StateStore

    store = StateStore.open(urls(folder)["state"])
    try:
        with Engine(load_project(folder / "project"), store) as eng:
            return eng.run("bench_accounts", mode=mode).counts["read"]
    finally:
        store.close()


def child(kind: str, folder: Path, mode: str) -> None:
    """One measurement in this process; prints wall, CPU, peak RSS and records read.
    Imports happen before the clock starts, for both."""
    import phonenumbers  # noqa: F401

    import crm2erp.demo.sample  # noqa: F401
    if kind == "engine":
        import crm2erp.engine  # noqa: F401
        import crm2erp.mapping  # noqa: F401
        import crm2erp.store  # noqa: F401
    if kind == "state":   # read and a fresh store made before the clock starts
        rows, url = state_rows(folder), empty_store(folder)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        if kind == "floor":
            read = floor(folder, folder / "floor.watermark" if mode == "incremental" else None)
        elif kind == "state":
            read = write_state_rows(url, rows)
        else:
            read = engine(folder, mode)
        measured = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                    "rss_mb": peak_rss_mb(), "read": read}
    finally:
        if kind == "state" and not url.startswith("sqlite"):
            drop_database(server_of(url), url)
    print(json.dumps(measured))


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's ``VmHWM`` starts afresh at exec;
    ``ru_maxrss`` would keep the forking parent's peak (the generated accounts)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, folder: Path, mode: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", kind, str(folder), mode],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the state store's rows alone ----------------------------------------------------------
_STATE_TABLES = {"xref": ("entity_id", "system_id", "external_id", "canonical_id",
                          "payload_hash"),
                 "canonical_records": ("entity_id", "canonical_id", "memory")}


def state_rows(folder: Path) -> dict[str, list[tuple]]:
    """The xref and hub-memory rows of the engine's state store, as stored."""
    db, _ = _erp_connection(urls(folder)["state"])
    try:
        cursor = db.cursor()
        found = {}
        for table, columns in _STATE_TABLES.items():
            cursor.execute(f"SELECT {', '.join(columns)} FROM {table}")
            found[table] = cursor.fetchall()
        return found
    finally:
        db.close()


def empty_store(folder: Path) -> str:
    """A fresh state store, migrated and empty, beside the engine's; its URL."""
    from crm2erp.store import StateStore

    state = urls(folder)["state"]
    if state.startswith("sqlite"):
        path = folder / "state_alone.db"
        path.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        url = fresh_database(server_of(state))
    StateStore.open(url).close()
    return url


def write_state_rows(url: str, rows: dict[str, list[tuple]], batch: int = 500) -> int:
    """``rows`` into their tables at ``url``, a commit every ``batch`` rows of each."""
    db, mark = _erp_connection(url)
    try:
        cursor = db.cursor()
        if mark == "?":   # as the state store's own SQLite connections
            cursor.execute("PRAGMA synchronous=NORMAL")
        for table, columns in _STATE_TABLES.items():
            listed = ", ".join(columns)
            for start in range(0, len(rows[table]), batch):
                part = rows[table][start:start + batch]
                if mark == "?":
                    cursor.executemany(f"INSERT INTO {table} ({listed}) VALUES "
                                       f"({', '.join('?' * len(columns))})", part)
                else:
                    with cursor.copy(f"COPY {table} ({listed}) FROM STDIN") as copy:
                        for row in part:
                            copy.write_row(row)
                db.commit()
        return sum(len(r) for r in rows.values())
    finally:
        db.close()


# -- the run ----------------------------------------------------------------------------
STATE_ROWS = "state rows alone, no engine"
SCENARIOS = [  # (label, engine mode, floor mode)
    ("full sync", "incremental", "full"),
    (STATE_ROWS, None, None),
    ("re-sync unchanged, incremental", "incremental", None),
    ("re-sync unchanged, --full-refresh", "full_refresh", None),
    ("incremental, 1% changed", "incremental", "incremental"),
]


def one_repetition(records: int, base: Path, db: str, pg_url: str
                   ) -> dict[tuple[str, str], dict]:
    results: dict[tuple[str, str], dict] = {}
    eng, flr = base / "engine", base / "floor"
    made: list[str] = []
    try:
        for folder in (eng, flr):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            if db == "postgresql":
                made.append(fresh_database(pg_url))
                erp_url = state_url = made[-1]
            else:
                erp_url, state_url = f"sqlite:///{folder / 'erp.db'}", \
                    f"sqlite:///{folder / 'state.db'}"
            prepare(folder, records, erp_url, state_url)
        for label, engine_mode, floor_mode in SCENARIOS:
            if engine_mode is None:
                continue   # measured right after the full sync
            if label.startswith("incremental"):
                touch(eng, 1)
                touch(flr, 1)
            results[(label, "engine")] = measure("engine", eng, engine_mode)
            if floor_mode is not None:
                results[(label, "floor")] = measure("floor", flr, floor_mode)
            if label == "full sync":
                results[(STATE_ROWS, "db")] = measure("state", eng, "full")
        results[("check", "")] = {"same": compare(eng, flr), **sizes(eng)}
    finally:
        for url in made:
            drop_database(pg_url, url)
    return results


def table_bytes(url: str, tables: list[str]) -> int:
    """What ``tables`` and their indexes take on disk in the database at ``url``."""
    erp, _ = _erp_connection(url)
    try:
        if url.startswith("sqlite"):
            marks = ", ".join("?" * len(tables))
            query = ("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN "
                     f"(SELECT name FROM sqlite_schema WHERE tbl_name IN ({marks}))")
            return erp.execute(query, tables).fetchone()[0]
        cursor = erp.cursor()
        cursor.execute("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                       "WHERE c.relkind = 'r' AND c.relname = ANY(%s)", (tables,))
        return int(cursor.fetchone()[0])
    finally:
        erp.close()


def sizes(folder: Path) -> dict[str, float]:
    """MB on disk: the engine's state store (every table of it) and the target table."""
    from crm2erp.store.tables import metadata

    where = urls(folder)
    return {"state_mb": table_bytes(where["state"], list(metadata.tables)) / 2**20,
            "target_mb": table_bytes(where["erp"], ["customers"]) / 2**20}


def compare(engine_dir: Path, floor_dir: Path) -> str:
    # crm_ref is the canonical id for the engine and the CRM id for the floor: compare
    # the rows' values as multisets
    query = ("SELECT name, kind, email, phone, street, postal_code, city, country, "
             "vat, currency FROM customers")
    tables = []
    for folder in (engine_dir, floor_dir):
        erp, _ = _erp_connection(urls(folder)["erp"])
        tables.append(Counter(tuple(row) for row in erp.cursor().execute(query).fetchall()))
        erp.close()
    a, b = tables
    differ = sum(((a - b) + (b - a)).values())
    return (f"equal, {a.total()} rows" if not differ else
            f"{differ} rows differ (engine {a.total()}, floor {b.total()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite",
                        help="where the ERP and the engine's state store live")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/"
                        "postgres", help="PostgreSQL server for --db postgresql")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, folder, mode = args.child
        child(kind, Path(folder), mode)
        return
    with tempfile.TemporaryDirectory() as tmp:
        runs = [one_repetition(args.records, Path(tmp), args.db, args.pg_url)
                for _ in range(args.repeat)]
    floor_full = statistics.median(r[("full sync", "floor")]["wall"] for r in runs)
    where = ("SQLite ERP, SQLite state store" if args.db == "sqlite"
             else "PostgreSQL ERP, PostgreSQL state store")
    print(f"{args.records} accounts, SQLite CRM -> {where}, median of {args.repeat}\n")
    print(f"| {'scenario':34} | {'who':6} | {'wall s':>7} | {'CPU s':>7} | {'RSS MB':>7} "
          f"| {'rec/s':>8} | {'x floor full':>12} |")
    print(f"|{'-' * 36}|{'-' * 8}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 10}|{'-' * 14}|")
    for label, *_ in SCENARIOS:
        for who in ("engine", "floor", "db"):
            if (label, who) not in runs[0]:
                continue
            wall, cpu, rss, read = (statistics.median(r[(label, who)][k] for r in runs)
                                    for k in ("wall", "cpu", "rss_mb", "read"))
            print(f"| {label:34} | {who:6} | {wall:7.2f} | {cpu:7.2f} | {rss:7.0f} "
                  f"| {read / wall if wall else 0:8.0f} | {wall / floor_full:12.2f} |")
    check = runs[-1][("check", "")]
    print(f"\noutput tables: {check['same']}")
    print(f"state store {check['state_mb']:.1f} MB, target table {check['target_mb']:.1f} MB "
          f"({check['state_mb'] / check['target_mb']:.1f}x), after the last run")


if __name__ == "__main__":
    main()

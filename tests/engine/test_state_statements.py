"""A whole sync run's state-store statements per batch do not grow with the batch:
xref look-ups, canonical memory, payload hashes and dead letters are read and
written once per batch, never per record (an N+1 query cannot come back).

Two runs of four batches each, one with batches of 3 records and one with
batches of 12 (a third of the records of each batch dead-lettered), must
send the state store the same number of statements: on a first sync (every
xref lookup a miss), on a re-sync of unchanged data and on a ``--full-refresh``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import sqlalchemy as sa

from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.store import StateStore
from tests.engine.conftest import T0, _account, make_systems

FLOW = """
flow: accounts
entity: Account
source: {{connection: crm, stream: accounts, mapping: account.in.map.yaml}}
target: {{connection: erp, stream: customers, mapping: customer.out.map.yaml}}
incremental: {{cursor: updated_at, lookback: 1m, batch_size: {size}}}
"""


def _shape(statement: str) -> str:
    """A statement without its parameter list's length (``IN (?, ?, ?)`` -> ``IN (?)``)."""
    text = re.sub(r"\?(, \?)+|%\(\w+\)s(, %\(\w+\)s)+", "?", " ".join(statement.split()))
    return re.sub(r"^UPDATE runs SET .* WHERE", "UPDATE runs SET (the counts) WHERE", text)


def _statements_per_mode(tmp_path, monkeypatch, size: int) -> dict[str, Counter]:
    folder = tmp_path / f"size{size}"
    folder.mkdir()
    systems = make_systems(folder, monkeypatch, f"sqlite:///{folder / 'crm.db'}",
                           f"sqlite:///{folder / 'erp.db'}", f"sqlite:///{folder / 'state.db'}")
    (systems.project / "accounts.flow.yaml").write_text(FLOW.format(size=size))
    systems.add_accounts(*(
        _account(n, kind="X" if n % size < size // 3 else "C", at=T0 + dt.timedelta(seconds=n))
        for n in range(4 * size)))
    store = StateStore.open(systems.state_url)
    seen: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: seen.append(statement))
    counts = {}
    try:
        with Engine(load_project(systems.project), store) as engine:
            for label, mode in (("first sync", "incremental"),
                                ("unchanged", "incremental"),
                                ("full refresh", "full_refresh")):
                seen.clear()
                result = engine.run("accounts", mode=mode)
                counts[label] = Counter(_shape(statement) for statement in seen)
                if label == "first sync":
                    assert result.counts["created"] == 4 * (size - size // 3)
                    assert result.counts["failed"] == 4 * (size // 3)
        assert len(systems.erp_rows()) == 4 * (size - size // 3)
        assert store.count_dead_letters(flow="accounts") == 4 * (size // 3)
    finally:
        store.close()
        systems.crm.dispose()
        systems.erp.dispose()
    return counts


def test_state_statements_per_run_do_not_grow_with_the_batch_size(tmp_path, monkeypatch):
    small = _statements_per_mode(tmp_path, monkeypatch, 3)
    large = _statements_per_mode(tmp_path, monkeypatch, 12)
    for mode in small:
        assert small[mode] == large[mode], (mode, small[mode] - large[mode],
                                            large[mode] - small[mode])


def test_a_run_reads_the_watermark_once_and_moves_it_with_every_batch(tmp_path, monkeypatch):
    counts = _statements_per_mode(tmp_path, monkeypatch, 3)   # four batches a run
    for mode, reads in (("first sync", 2), ("unchanged", 2), ("full refresh", 1)):
        statements = counts[mode]   # an incremental run also reads where to start
        assert sum(n for s, n in statements.items()
                   if s.startswith("SELECT") and "FROM watermarks" in s) == reads, mode
        assert sum(n for s, n in statements.items()
                   if s.startswith("INSERT INTO watermarks")) == 4, mode
    store = StateStore.open(f"sqlite:///{tmp_path / 'size3' / 'state.db'}")
    try:   # the last batch's cursor: the latest account's, read back
        mark = store.get_watermark("accounts", "accounts")
        assert mark is not None and mark.value.startswith(
            (T0 + dt.timedelta(seconds=11)).strftime("%Y-%m-%dT%H:%M:%S")), mark
    finally:
        store.close()

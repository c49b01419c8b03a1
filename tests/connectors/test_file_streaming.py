"""The file source sorts a read in bounded memory: beyond ``spill.RUN_SIZE`` rows it
keeps sorted runs on disk and merges them, and the rows come out exactly as an
in-memory sort gives them (same order, same batches, same cursors and rejects)."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm2erp.connectors import create_connector
from crm2erp.connectors.base import Cursor
from crm2erp.connectors.file import spill


def _read(folder, run_size, monkeypatch, since=None, batch_size=3):
    monkeypatch.setattr(spill, "RUN_SIZE", run_size)
    conn = create_connector("file", {"path": str(folder), "streams": {
        "accounts": {"file": "accounts.csv", "cursor": "updated_at"}}})
    return [(b.rows, b.cursor, [(r.key, r.where) for r in b.rejected])
            for b in conn.read("accounts", since, batch_size=batch_size)]


cursors = st.one_of(st.none(), st.just("n/a"),
                    st.integers(0, 6).map(lambda h: f"2024-01-01T0{h}:00:00Z"))


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(1, 30), cursors), max_size=40),
       run_size=st.integers(1, 7), batch_size=st.integers(1, 5),
       since=st.one_of(st.none(), st.integers(0, 6)))
def test_spilled_reads_equal_in_memory_reads(tmp_path_factory, rows, run_size, batch_size,
                                              since):
    folder = tmp_path_factory.mktemp("spill")
    lines = ["id,name,updated_at"] + [f"{key},n{i},{'' if c is None else c}"
                                      for i, (key, c) in enumerate(rows)]
    (folder / "accounts.csv").write_text("\n".join(lines) + "\n")
    since = None if since is None else Cursor(f"2024-01-01T0{since}:00:00+00:00")
    with pytest.MonkeyPatch.context() as patch:
        spilled = _read(folder, run_size, patch, since, batch_size)
        in_memory = _read(folder, 10**9, patch, since, batch_size)
    assert spilled == in_memory
    read = [row for batch_rows, _, _ in spilled for row in batch_rows]
    once = {key for key, _ in rows if [k for k, _ in rows].count(key) == 1}
    expected = len([c for key, c in rows if c not in ("n/a",) and key in once
                    and (since is None or (c is not None and c >= since.value[:19]))])
    assert len(read) == expected


def test_memory_of_a_read_is_bounded_by_the_run_size(tmp_path, monkeypatch):
    lines = ["id,name,updated_at"] + [
        f"{i},{'x' * 200},2024-01-{1 + (i * 7919) % 28:02d}T00:00:00Z" for i in range(6000)]
    (tmp_path / "accounts.csv").write_text("\n".join(lines) + "\n")

    def read(run_size: int) -> list[str]:
        monkeypatch.setattr(spill, "RUN_SIZE", run_size)
        conn = create_connector("file", {"path": str(tmp_path), "streams": {
            "accounts": {"file": "accounts.csv", "cursor": "updated_at"}}})
        order: list[str] = []
        for batch in conn.read("accounts", None, batch_size=100):
            order.extend(row["id"] for row in batch.rows)
        return order

    def peak(run_size: int) -> tuple[int, list[str]]:
        tracemalloc.start()
        try:
            order = read(run_size)
            return tracemalloc.get_traced_memory()[1], order
        finally:
            tracemalloc.stop()

    # the caches and imports a first read fills are not the read's: filled untraced
    # (tracing makes every allocation several times slower)
    read(10**9)
    whole, whole_order = peak(10**9)
    spilled, spilled_order = peak(500)
    assert spilled_order == whole_order and len(whole_order) == 6000
    assert spilled < whole / 3, (spilled, whole)

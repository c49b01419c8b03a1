"""A lean hub memory: canonical records and xref hashes in their compact forms.

Every ``canonical_records`` row is rewritten in the format of
:mod:`crm2erp.store.fieldmemory` (format 3: one usual (system, time) pair per
record, only the hashes of values the hub did not keep, no null fields nobody
set), from any earlier format: 2 (``{"v": 2, "w": [[by, at]], "f": {path:
[index, seen]}}``), 1 (``{path: {"by", "at", "seen": sha256}}``) or 0
(``{path: [by, at]}``). A sha256 keeps its first 128 bits, which is what the
engine compares (the last changer's hash of the stored value goes: the stored
value says it). Payload hashes in ``xref`` (sha256, 64 hex digits)
keep their first 128 bits, the length :func:`crm2erp.jsonutil.text_hash` gives
now: the same payloads still match, so nothing is written again after the upgrade.

Rows are converted in batches of 1,000 by key. The downgrade leaves the rows
as they are (an older crm2erp cannot read them: restore a backup instead).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from alembic import op

from crm2erp.jsonutil import dumps, loads
from crm2erp.store.fieldmemory import VERSION, Pair, compact_state, flatten

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BATCH = 1000
SHA256 = 64   # hex digits of the hashes written before

_records = sa.table("canonical_records", sa.column("entity"), sa.column("canonical_id"),
                    sa.column("data"), sa.column("field_times"))
_xref = sa.table("xref", sa.column("payload_hash"))


def _wide_hash(value: Any) -> str:
    """The payload hash of this revision's time: sha256's first 128 bits (32 hex digits;
    crm2erp.jsonutil.payload_hash keeps 64 since 0014)."""
    return hashlib.sha256(dumps(value).encode()).hexdigest()[:32]


def _sent_then(data: dict[str, Any], path: str, systems: dict[str, str],
               changer: str | None) -> dict[str, str]:
    """What each system sent (sha256 cut to 128 bits), without the last changer's
    hash of the stored value (which the compact format leaves out)."""
    kept = {system: hashed[:32] if len(hashed) == SHA256 else hashed
            for system, hashed in systems.items()}
    if changer in kept and kept[changer] == _wide_hash(flatten(data).get(path)):
        del kept[changer]
    return kept


def convert(entity: str, canonical_id: str, data: dict[str, Any],
            times: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data, field_times) of a stored record in the current format."""
    if times.get("v") == VERSION:
        return data, times
    pairs: dict[str, Pair] = {}
    sent: dict[str, dict[str, str]] = {}
    if times.get("v") == 2:
        who = times.get("w", [])
        for path, (index, seen) in times.get("f", {}).items():
            if index is not None:
                pairs[path] = (who[index][0], who[index][1])
            sent[path] = dict(seen or {})
    else:
        for path, raw in times.items():
            if isinstance(raw, dict):          # format 1
                if raw.get("by") is not None or raw.get("at") is not None:
                    pairs[path] = (raw.get("by"), raw.get("at"))
                sent[path] = _sent_then(data, path, raw.get("seen") or {}, raw.get("by"))
            elif isinstance(raw, list) and raw:   # format 0
                pairs[path] = (raw[0], raw[1] if len(raw) > 1 else None)
    state = compact_state(entity, canonical_id, data, pairs, sent)
    return state.data, state.field_times


def upgrade() -> None:
    conn = op.get_bind()
    after: tuple[str, str] | None = None
    while True:
        query = sa.select(_records).order_by(_records.c.entity, _records.c.canonical_id)
        if after is not None:
            query = query.where(sa.tuple_(_records.c.entity, _records.c.canonical_id)
                                > sa.tuple_(*after))
        rows = conn.execute(query.limit(BATCH)).all()
        if not rows:
            break
        changes = []
        for row in rows:
            data, times = convert(row.entity, row.canonical_id, loads(row.data),
                                  loads(row.field_times))
            new_data, new_times = dumps(data), dumps(times)
            if (new_data, new_times) != (row.data, row.field_times):
                changes.append({"e": row.entity, "c": row.canonical_id,
                                "d": new_data, "t": new_times})
        if changes:
            conn.execute(_records.update()
                         .where(_records.c.entity == sa.bindparam("e"),
                                _records.c.canonical_id == sa.bindparam("c"))
                         .values(data=sa.bindparam("d"), field_times=sa.bindparam("t")),
                         changes)
        after = (rows[-1].entity, rows[-1].canonical_id)
    conn.execute(_xref.update().where(sa.func.length(_xref.c.payload_hash) == SHA256)
                 .values(payload_hash=sa.func.substr(_xref.c.payload_hash, 1, 32)))


def downgrade() -> None:
    """The compact rows stay: an older crm2erp cannot read them (restore a backup)."""

"""The records the dedupe stage matches: a batch's new records and what already exists.

Everything is turned into one plain-dict shape the matcher understands: the
canonical record in JSON form, with ``id`` set to the id the record has (or
would have) as a canonical record, and ``_source`` set to the system it came
from, for the survivorship rule ``source_priority``.

Existing records come from two places:

* the hub's canonical records (``existing: true``): every record already
  synced, of any flow of the entity;
* the flow's target stream (``target: {mapping: ...}``): records the
  integration never wrote. Their id is the value of the target stream's
  upsert key (``crm_ref``, say): when a new record takes that id as its
  canonical id, the outbound mapping (``crm_ref: {from: id}``) produces that
  key again, so the upsert updates the existing target record.
"""

from __future__ import annotations

__all__ = ["MatchRecord", "label_of", "from_item", "from_state", "load_target_records"]

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from crm2erp.engine.memory import field_memory
from crm2erp.errors import Crm2ErpError
from crm2erp.store import CanonicalState

log = logging.getLogger(__name__)

SOURCE_FIELD = "_source"


@dataclass
class MatchRecord:
    """One record as the matcher sees it, and where it came from.

    ``kind`` is ``new`` (a batch record not synced before), ``pool`` (a
    canonical record already synced) or ``target`` (a target record the
    integration never wrote).
    """

    id: str
    data: dict[str, Any]
    kind: str
    system: str | None
    source_key: str | None
    state: CanonicalState | None = None
    updated_at: str = ""

    @property
    def label(self) -> str:
        return label_of(self.data)


def label_of(data: dict[str, Any]) -> str:
    """A name a steward recognises: ``name``, else first + last name, else e-mail, else id."""
    if data.get("name"):
        return str(data["name"])
    person = " ".join(str(data[k]) for k in ("first_name", "last_name") if data.get(k))
    return person or str(data.get("email") or data.get("number") or data.get("id"))


def _stamp(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return "" if value is None else str(value)


def from_item(item, system: str) -> MatchRecord:
    """A batch record (engine ``Item``) as a match record."""
    data = item.record.model_dump(mode="json")
    data["id"] = item.canonical_id
    data[SOURCE_FIELD] = system
    return MatchRecord(item.canonical_id, data, "new", system, item.source_key,
                       updated_at=_stamp(data.get("updated_at")))


def system_of(state: CanonicalState) -> str | None:
    """The system that last changed most of a canonical record's fields."""
    systems = Counter(by for by, _, _ in field_memory(state).values() if by)
    return systems.most_common(1)[0][0] if systems else None


def from_state(state: CanonicalState, source_key: str | None = None) -> MatchRecord:
    """A canonical record already synced as a match record."""
    data = dict(state.data)
    data["id"] = state.canonical_id
    if not data.get("updated_at"):   # the memory keeps change times per field
        times = [at for _, at, _ in field_memory(state).values() if at]
        data["updated_at"] = max(times) if times else None
    system = system_of(state)
    data[SOURCE_FIELD] = system
    return MatchRecord(state.canonical_id, data, "pool", system, source_key, state=state,
                       updated_at=_stamp(data.get("updated_at")))


def load_target_records(target, system: str, stream_name: str, mapping, model, resolver,
                        store, entity: str, known_ids: set[str]) -> dict[str, MatchRecord]:
    """Read the target stream and keep the records the hub does not know.

    A target record is known when its upsert key is a canonical id (the
    integration wrote it) or its own id is in the cross-reference.
    """
    stream = target.stream(stream_name)
    rows = [row for batch in target.read(stream_name, None, batch_size=1000)
            for row in batch.rows]
    identities = {_key(row, stream.identity): row for row in rows}
    in_xref = set(store.canonical_ids(entity, system, list(identities)))
    found: dict[str, MatchRecord] = {}
    for identity, row in identities.items():
        key = _key(row, stream.key)
        if not key or key in known_ids or identity in in_xref:
            continue
        try:
            if not mapping.matches(row):
                continue
            data = mapping.apply(row, resolver)
            data["id"] = key
            data = model.model_validate(data).model_dump(mode="json")
        except (ValidationError, Crm2ErpError, ValueError) as exc:  # mapping or validation
            log.debug("dedupe: target record %s skipped: %s", key, exc)
            continue
        data[SOURCE_FIELD] = system
        found[key] = MatchRecord(key, data, "target", system, identity,
                                 updated_at=_stamp(data.get("updated_at")))
    log.info("dedupe: %d of %d target records are unknown to the hub and take part in "
             "matching", len(found), len(rows))
    return found


def _key(row: dict, fields) -> str:
    return "|".join("" if row.get(f) is None else str(row.get(f)) for f in fields)

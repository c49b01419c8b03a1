"""Survivorship: the golden record of a cluster, field by field, with provenance.

Each field picks its value from the cluster's records by one rule:

* ``source_priority`` - from the most trusted source (``source_priority`` list,
  read from ``source_field``); sources not listed rank last;
* ``most_recent`` - from the record with the latest ``timestamp_field``;
* ``most_complete`` - from the record with the most non-null fields;
* ``longest`` - the longest value (as text);
* ``most_frequent`` - the value most records agree on;
* ``target`` - from the target system's record (``target_source``), else from
  the earliest record (the one synced first).

``identifiers`` (default ``tax_id``, ``customer_number``) follow ``target``
unless ``fields`` names another rule, so a newer record never replaces the
ERP's VAT id with its own; when members hold different non-empty values the
field is listed in ``GoldenRecord.conflicts`` (all values) for a steward;
values that differ only in case, spaces or punctuation are one identifier.

Nulls (None, NaN, blank strings) never survive while any record has a value.
Ties fall back to the most recent record, then to the smallest record id, so
the result does not depend on input order. ``provenance`` names, for every
field, the id of the record that supplied the value (None when all are null).
"""

from __future__ import annotations

__all__ = ["GoldenRecord", "survive"]

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crm2erp.quality.dedupe.config import SurvivorshipConfig
from crm2erp.quality.dedupe.transforms import apply, clean, to_date

_FAR_PAST = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass
class GoldenRecord:
    """The surviving values, where each came from, and the cluster's record ids."""

    values: dict[str, Any]
    provenance: dict[str, Any]
    source_ids: list[Any] = field(default_factory=list)
    conflicts: dict[str, list[Any]] = field(default_factory=dict)


def _present(value: Any) -> bool:
    return clean(value) is not None if isinstance(value, str | float) else value is not None


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        except ValueError:
            pass
    day = to_date(value)
    if day is not None:
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return _FAR_PAST


def _sort_key(value: Any) -> tuple[str, str]:
    return (type(value).__name__, str(value))


def survive(records: Sequence[Mapping[str, Any]], config: SurvivorshipConfig | None = None,
            *, id_field: str = "id") -> GoldenRecord:
    """Build the golden record of one cluster of (already matched) records."""
    config = config or SurvivorshipConfig()
    if not records:
        return GoldenRecord(values={}, provenance={}, source_ids=[])
    rank = {source: i for i, source in enumerate(config.source_priority)}
    worst = len(rank)
    recency = {id(r): _timestamp(r.get(config.timestamp_field)) for r in records}
    filled = {id(r): sum(_present(v) for k, v in r.items() if k != id_field) for r in records}
    # base order for ties: most recent first, then smallest id
    base = sorted(records, key=lambda r: _sort_key(r.get(id_field)))
    base.sort(key=lambda r: recency[id(r)], reverse=True)
    position = {id(r): i for i, r in enumerate(base)}

    orderings: dict[str, Callable[[Mapping[str, Any]], Any]] = {
        "source_priority": lambda r: (rank.get(r.get(config.source_field), worst),
                                      position[id(r)]),
        "most_recent": lambda r: position[id(r)],
        "most_complete": lambda r: (-filled[id(r)], position[id(r)]),
        # the target's record first, then the earliest (synced first)
        "target": lambda r: (r.get(config.source_field) != config.target_source
                             if config.target_source else False,
                             recency[id(r)], -position[id(r)]),
    }
    fields: list[str] = []
    for record in base:
        fields.extend(k for k in record if k != id_field and k not in fields)

    values: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    conflicts: dict[str, list[Any]] = {}
    for name in fields:
        identifier = name in config.identifiers
        rule = config.rule_for(name)
        candidates = [r for r in base if _present(r.get(name))]
        if not candidates:
            values[name], provenance[name] = None, None
            continue
        # "DE 123 456 789" and "de123456789" are one identifier, spelt two ways
        if identifier and len({tuple(apply([r[name]], ["alnum"])) for r in candidates}) > 1:
            conflicts[name] = [v for _, v in sorted({_sort_key(r[name]) for r in candidates})]
        if rule in orderings:
            winner = min(candidates, key=orderings[rule])
        elif rule == "longest":
            winner = min(candidates, key=lambda r: (-len(str(r[name])), position[id(r)]))
        else:  # most_frequent
            counts = Counter(_sort_key(r[name]) for r in candidates)
            winner = min(candidates, key=lambda r: (-counts[_sort_key(r[name])], position[id(r)]))
        values[name] = winner[name]
        provenance[name] = winner.get(id_field)
    return GoldenRecord(values=values, provenance=provenance,
                        source_ids=sorted((r.get(id_field) for r in records), key=_sort_key),
                        conflicts=conflicts)

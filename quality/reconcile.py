"""Reconciliation: does the target still hold what the flow put there?

The whole source stream is read batch by batch and taken through the flow's
own mappings (inbound, canonical validation, outbound), exactly as a sync
would; each mapped row is compared with ``target.lookup`` of its key:

* ``missing_in_target`` - the source record maps to a key the target lacks
  (noted when the xref says it was synced: deleted by hand in the target?);
* ``different`` - field-level differences between the mapped row and the
  target's row, for the fields the outbound mapping writes;
* ``only_in_target`` - target rows the flow owns (the xref links them to a
  record of its entity) or could match (their key is one of the entity's
  canonical ids), and that no mapped source record has. Other rows - another
  flow's, the ERP company's own, ones ERP users made - are only counted
  (``out_of_scope``);
* ``orphaned`` - target records the xref links to a source record that is no
  longer in the source;
* ``unmapped`` - source records that cannot be mapped (they are in the dead
  letters of the sync, or their parent is missing), and records the flow's
  quality gate quarantined (an open dead letter of stage ``quality``).

Values are compared normalised, the same way on both sides (:func:`normalise`):
text trimmed with inner whitespace collapsed, blank = null, numbers by value,
phone numbers (text starting with ``+``) in E.164; nested records (an address)
field by field, for the fields the outbound mapping writes. Row fields a
connector lists in ``write_options`` steer the write and are not compared.

Only keys are held in memory (sets of strings), never whole rows. The result
is stored (``reconciliations`` table) and shown in the steward report.
"""

from __future__ import annotations

__all__ = ["reconcile", "ReconcileResult", "values_equal", "normalise"]

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from crm2erp.engine.batch import record_key
from crm2erp.engine.inbound import canonicalize
from crm2erp.engine.load import outbound
from crm2erp.jsonutil import to_jsonable
from crm2erp.store import BatchCommit
from crm2erp.store.types import utcnow

log = logging.getLogger(__name__)

DETAIL_LIMIT = 500  # entries kept per kind of difference


@dataclass
class ReconcileResult:
    flow: str
    entity: str
    counts: Counter = field(default_factory=Counter)
    details: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {
        "missing_in_target": [], "different": [], "only_in_target": [], "orphaned": [],
        "unmapped": []})
    id: int | None = None

    @property
    def clean(self) -> bool:
        return not any(self.counts[k] for k in ("missing_in_target", "different",
                                                 "only_in_target", "orphaned"))

    @property
    def status(self) -> str:
        return "clean" if self.clean else "differences"

    def add(self, kind: str, entry: dict[str, Any], count: bool = True) -> None:
        if count:
            self.counts[kind] += 1
        if len(self.details[kind]) < DETAIL_LIMIT:
            self.details[kind].append(to_jsonable(entry))


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


_PHONE = re.compile(r"^\+[\d\s\-().\/]{6,}$")


def _e164(text: str) -> str | None:
    try:
        import phonenumbers
    except ImportError:  # pragma: no cover - a dependency; kept optional here
        return None
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise(value: Any) -> Any:
    """The form values are compared in: text trimmed, inner whitespace collapsed,
    blank as None, a phone number (``+49 30 1234567``) in E.164. Other values as given."""
    if not isinstance(value, str):
        return value
    text = " ".join(value.split())
    if not text:
        return None
    if _PHONE.match(text):
        return _e164(text) or text
    return text


def values_equal(expected: Any, actual: Any) -> bool:
    """Equal after the usual round trips: numbers by value, blanks as null, dates as text,
    text and phone numbers normalised (:func:`normalise`)."""
    expected, actual = normalise(expected), normalise(actual)
    if expected is None and actual is None:
        return True
    if expected == actual:
        return True
    a, b = _number(expected), _number(actual)
    if a is not None and b is not None:
        return a == b
    if isinstance(expected, dict | list) or isinstance(actual, dict | list):
        return to_jsonable(expected) == to_jsonable(actual)
    return str(to_jsonable(expected)) == str(to_jsonable(actual))


def _differences(expected: dict, actual: dict, skip: frozenset = frozenset(),
                 prefix: str = "") -> list[dict[str, Any]]:
    """Field differences of ``expected`` (what the mapping writes) against ``actual``."""
    found: list[dict[str, Any]] = []
    for name, value in expected.items():
        if name in skip:
            continue
        have = actual.get(name) if isinstance(actual, dict) else None
        path = prefix + name
        if isinstance(value, dict) and (have is None or isinstance(have, dict)):
            found += _differences(value, have or {}, prefix=path + ".")
        elif isinstance(value, list):  # embedded children: compared as a whole
            if len(value) != len(have or []):
                found.append({"field": path, "source": f"{len(value)} item(s)",
                              "target": f"{len(have or [])} item(s)"})
        elif not values_equal(value, have):
            found.append({"field": path, "source": value, "target": have})
    return found


def _compare(result: ReconcileResult, key: str, expected: dict, actual: dict,
             skip: frozenset = frozenset(), source_key: str | None = None) -> bool:
    diffs = _differences(expected, actual, skip)
    for diff in diffs:   # the source key: the steward's console re-syncs by it
        result.add("different", {"key": key, "source_key": source_key, **diff}, count=False)
    return not diffs


def reconcile(runner, *, save: bool = True, batch_size: int = 500) -> ReconcileResult:
    """Compare the source and target of ``runner``'s flow (an engine FlowRunner)."""
    flow, store = runner.flow, runner.store
    started = utcnow()
    result = ReconcileResult(flow.flow, flow.entity)
    source_keys: set[str] = set()
    target_keys: set[str] = set()
    runner.mode = "full_refresh"  # no "nothing new" short cut: compare every record
    key_fields = runner.source_stream.key
    skip = frozenset(getattr(runner.target, "write_options", ()))
    quarantined = {d.source_key: d.error for d in store.dead_letters(
        flow.flow, limit=1_000_000) if d.stage == "quality"}
    for batch in runner.source.read(flow.source.stream, None, batch_size=batch_size):
        rows = batch.rows
        result.counts["source_count"] += len(rows)
        source_keys.update(record_key(r, key_fields) for r in rows)
        scratch = BatchCommit(run_id=0, flow=flow.flow)
        counts: Counter = Counter()
        items = outbound(runner, canonicalize(runner, rows, counts, scratch), counts, scratch)
        for letter in scratch.dead_letters:
            result.add("unmapped", {"key": letter.source_key, "note": letter.error[:300]})
        by_key = {i.target_key: i for i in items}
        target_keys.update(by_key)
        current = runner.target.lookup(flow.target.stream, list(by_key)) if by_key else {}
        synced = store.external_ids(flow.entity, runner.target_system,
                                    [i.canonical_id for i in items])
        for key, item in by_key.items():
            actual = current.get(key)
            if actual is None and item.source_key in quarantined:
                result.add("unmapped", {"key": item.source_key,
                                        "note": quarantined[item.source_key][:300]})
                continue
            if actual is None:
                note = ("synced before (the xref has it): deleted in the target?"
                        if item.canonical_id in synced else "never synced")
                result.add("missing_in_target", {"key": key, "source_key": item.source_key,
                                                 "note": note})
                continue
            if _compare(result, key, item.target_row, actual, skip, item.source_key):
                result.counts["matched"] += 1
            else:
                result.counts["different"] += 1
    _target_side(runner, result, target_keys, batch_size)
    _orphans(runner, result, source_keys)
    if save:
        result.id = store.save_reconciliation(flow.flow, flow.entity, result.status, started,
                                              dict(result.counts), result.details)
    log.info("reconcile %s: %s %s", flow.flow, result.status, dict(result.counts))
    return result


def _target_side(runner, result: ReconcileResult, mapped_keys: set[str],
                 batch_size: int) -> None:
    """List the target rows in the flow's scope that no source record maps to.

    In scope: rows the xref links to a record of the flow's entity (by the
    target's id field, else its key), and rows whose key is a canonical id of
    the entity. The rest (other flows' records, the ERP's own) is only counted.
    """
    flow, store = runner.flow, runner.store
    key_fields = runner.target_stream.key
    id_field = runner.target_stream.id_field
    owned = {external for external, _ in store.iter_xref(flow.entity, runner.target_system)}
    canonical = {can for _, can in store.iter_xref(flow.entity, runner.source_system)}
    for batch in runner.target.read(flow.target.stream, None, batch_size=batch_size):
        for row in batch.rows:
            key = record_key(row, key_fields)
            ident = str(row.get(id_field)) if id_field and row.get(id_field) is not None \
                else key
            if key not in mapped_keys and ident not in owned and key not in canonical:
                result.counts["out_of_scope"] += 1
                continue
            result.counts["target_count"] += 1
            if key not in mapped_keys:
                result.add("only_in_target", {"key": key, "note": "no source record maps "
                                              "to this key"})


def _orphans(runner, result: ReconcileResult, source_keys: set[str]) -> None:
    """Target records whose xref'd source record is gone from the source."""
    flow, store = runner.flow, runner.store
    source_of: dict[str, str] = {}
    for external_id, canonical_id in store.iter_xref(flow.entity, runner.source_system):
        source_of[canonical_id] = external_id
    for target_id, canonical_id in store.iter_xref(flow.entity, runner.target_system):
        source_key = source_of.get(canonical_id)
        if source_key is not None and source_key not in source_keys:
            result.add("orphaned", {"key": target_id, "source_key": source_key,
                                    "note": f"source record {source_key!r} no longer exists"})

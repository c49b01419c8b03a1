"""Writing to SAP: deep insert, etag-guarded MERGE, one ``$batch`` changeset per record.

For each batch of rows the writer looks the records up by the stream's
``external_id`` properties (with their expanded children), then plans per
record either a deep-insert ``POST`` (children inline, ``create_defaults``
filled in) or ``MERGE`` calls for the header and children that differ, each
with ``If-Match`` set to the etag just read. Every record is one changeset in
a ``$batch`` request: SAP applies a changeset all or nothing, and a refused
one fails only its own record.

Recovery, without losing or doubling a record:

* ``412 Precondition Failed`` (someone changed the record after we read it):
  the record is read again and written once more; a second 412 fails it
  (the next run picks it up).
* A lost answer (connection dropped, 429, 5xx, cut multipart body): nothing
  tells which changesets were applied, so that batch's records are planned
  again from a fresh read - a created record is found and updated, not
  created twice. Each record may be sent ``retry.max_attempts`` times (the
  connection's retry policy, paced by :meth:`HttpClient.backoff`); only a
  record that used up its budget stops the run, with a RetriableError.
* ``403`` with ``x-csrf-token: Required``: see :mod:`.client`.
"""

from __future__ import annotations

__all__ = ["SapWriter"]

import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.sap.client import SapClient
from crm2erp.connectors.sap.config import SapStreamConfig
from crm2erp.connectors.sap.odata import describe_error, literal, parse_date, to_wire
from crm2erp.connectors.sap.rows import clean
from crm2erp.connectors.toolkit import odata_batch as batch
from crm2erp.connectors.toolkit.batches import chunks
from crm2erp.connectors.toolkit.targets import rows_by_key
from crm2erp.connectors.toolkit.values import same_value
from crm2erp.connectors.toolkit.writer import write_in_batches
from crm2erp.contract import key_text
from crm2erp.errors import ConfigError, FatalError, RetriableError

log = logging.getLogger(__name__)
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
#: the flag SAP sets on the standard entry of each communication kind of an address
DEFAULT_FLAGS = {"to_PhoneNumber": "IsDefaultPhoneNumber",
                 "to_MobilePhoneNumber": "IsDefaultPhoneNumber",
                 "to_FaxNumber": "IsDefaultFaxNumber",
                 "to_EmailAddress": "IsDefaultEmailAddress"}


def same(current: Any, desired: Any) -> bool:
    """Whether the value SAP holds already equals the one we would send (two
    ``/Date(...)/`` texts: the same instant, whatever the offset suffix)."""
    new = to_wire(desired) if isinstance(desired, Decimal | dt.date | dt.time) else desired
    if isinstance(current, str) and isinstance(new, str) and current.startswith("/Date(") \
            and current != new:
        try:
            return parse_date(current) == parse_date(new)
        except ValueError:
            return False
    return same_value(current, new)


def _navs(child: dict) -> dict[str, str]:
    """The navigation properties inside a child row (``to_PhoneNumber`` of an address),
    each to-many."""
    return {k: "many" for k, v in child.items()
            if k.startswith("to_") and isinstance(v, dict | list)}


def _entries(nav: str, value: Any) -> list[dict]:
    """The children sent for a to-many ``nav``: a dict is one entry, entries without
    any value are dropped (a CRM field left empty), nested ones likewise, and the first
    communication entry is the standard one."""
    flag = DEFAULT_FLAGS.get(nav)
    out = []
    for item in [value] if isinstance(value, dict) else list(value or []):
        if not isinstance(item, dict):
            continue
        navs = _navs(item)
        entry = {k: _entries(k, v) if k in navs else v for k, v in item.items()}
        if any(v not in (None, "", []) for k, v in entry.items() if k != flag):
            out.append(entry)
    if flag:
        for i, entry in enumerate(out):
            entry.setdefault(flag, i == 0)
    return out


def _op(method: str, target: str, body: dict | None = None,
        etag: str | None = None) -> batch.Message:
    """One call of a changeset: a JSON ``body`` (if any), ``If-Match`` when ``etag``."""
    headers = {} if body is None else dict(_JSON)
    if etag:
        headers["If-Match"] = etag
    data = b"" if body is None else json.dumps(body, default=to_wire).encode()
    return batch.Message(method, target, headers=headers, body=data)


def _uri(stream: SapStreamConfig, entity: dict) -> str:
    """The entity's ``__metadata`` uri, relative to the stream's service."""
    uri = (entity.get("__metadata") or {}).get("uri", "")
    marker = f"/{stream.service}/"
    return uri.split(marker, 1)[1] if marker in uri else uri


def _on(stream: SapStreamConfig, method: str, entity: dict,
        body: dict | None = None) -> batch.Message:
    """``method`` on ``entity`` itself, guarded by the etag it was read with."""
    return _op(method, _uri(stream, entity), body, (entity.get("__metadata") or {}).get("etag"))


class _Plan:
    """The calls that bring one record up to date, and how to read its id after."""

    def __init__(self, index: int, key: str, ops: list[batch.Message], existing_id: str | None):
        self.index, self.key, self.ops, self.existing_id = index, key, ops, existing_id


#: ``plan(index, current entity or None, whether an answer for it was lost)``
Planner = Callable[[int, dict | None, bool], _Plan | WriteResult]


class SapWriter:
    def __init__(self, client: SapClient):
        self.client = client

    # -- look-ups ------------------------------------------------------------
    def fetch(self, stream: SapStreamConfig, keys: Sequence[str],
              fields: list[str] | None = None) -> dict[str, dict]:
        """Raw entities (``__metadata`` kept) by external key (or by ``fields``)."""
        fields = fields or stream.external_id

        def match(key: str) -> str:
            values = key.split("|") if len(fields) > 1 else [key]
            return " and ".join(f"{f} eq {literal(v)}"
                                for f, v in zip(fields, values, strict=False))

        def fetch_chunk(chunk: list[str]) -> Iterator[tuple[str, dict]]:
            query = {"$filter": " or ".join(f"({match(k)})" for k in chunk), "$format": "json"}
            if stream.expand:
                query["$expand"] = ",".join(stream.expand)
            for entity in self.client.entities(stream, query):
                yield key_text([entity.get(f) for f in fields]), entity

        return rows_by_key(keys, self.client.config.lookup_chunk, fetch_chunk)

    def lookup(self, name: str, stream: SapStreamConfig, keys: Sequence[str]) -> Mapping[str, Row]:
        if not stream.writable:
            raise ConfigError(f"SAP stream {name!r} is read-only: set external_id (the "
                              "properties writes match on) in its stream config to write it")
        return {k: clean(v) for k, v in self.fetch(stream, keys).items()}

    # -- planning ------------------------------------------------------------
    def _changes(self, stream: SapStreamConfig, entity: dict, row: Row,
                 navs: Mapping[str, str]) -> list[batch.Message]:
        """A MERGE of the properties that differ, then the calls of each navigation
        property in ``navs`` (``{name: "one" or "many"}``) the row carries."""
        diff = {k: v for k, v in row.items() if k not in navs and not same(entity.get(k), v)}
        ops = [_on(stream, "MERGE", entity, diff)] if diff else []
        for nav, kind in navs.items():
            value, current = row.get(nav), entity.get(nav)
            if value is not None and kind == "many":
                ops += self._sync(stream, entity, nav, value)
            elif isinstance(current, dict) and isinstance(value, dict):
                ops += self._changes(stream, current, value, {})
        return ops

    def _sync(self, stream: SapStreamConfig, parent: dict, nav: str,
              value: Any) -> list[batch.Message]:
        """Calls that bring the to-many ``nav`` of ``parent`` to the values sent.

        Communication entries (:data:`DEFAULT_FLAGS`): the integration owns the
        standard one - it takes the first value sent (replacing the value sent
        before); the others (added in SAP) are kept, further values sent are added
        when missing. No value sent removes nothing: SAP makes another entry
        standard when one is removed, and it could be a user's. Other children
        (addresses, items): the first ones, in order, are the integration's and are
        merged; extra ones in SAP are kept.
        """
        desired = _entries(nav, value)
        current = parent.get(nav)
        if not (isinstance(current, dict) and isinstance(current.get("results"), list)):
            # not read: every write would add the children again
            raise ConfigError(f"SAP stream {stream.entity_set}: rows carry {nav}, but it is "
                              f"not read with the record - add it to the stream's expand "
                              f"(nested ones as parent/{nav}, e.g. "
                              f"to_BusinessPartnerAddress/{nav})")
        have, flag = current["results"], DEFAULT_FLAGS.get(nav)
        add = f"{_uri(stream, parent)}/{nav}"
        ops: list[batch.Message] = []
        if not flag:
            for i, child in enumerate(desired):
                if i < len(have):
                    ops += self._changes(stream, have[i], child, _navs(child))
                else:
                    ops.append(_op("POST", add, child))
            return ops
        if not desired:   # emptied or never set: nothing here is provably ours
            return []
        first, *rest = desired
        owned = next((h for h in have if h.get(flag)), None)
        if owned is None:
            ops.append(_op("POST", add, first))
        else:
            ops += self._changes(stream, owned, first, _navs(first))
        for extra in rest:
            if not any(all(same(h.get(k), v) for k, v in extra.items() if k != flag)
                       for h in have):
                ops.append(_op("POST", add, extra))
        return ops

    # -- writing ---------------------------------------------------------------
    def upsert(self, name: str, stream: SapStreamConfig, rows: Sequence[Row]) -> list[WriteResult]:
        fields = stream.external_id
        problem = f"{', '.join(fields)} must be set: SAP records are matched on it"

        def key_of(row: Row) -> str:
            return key_text([row.get(f) for f in fields])

        def refuse(row: Row) -> str | None:
            values = [row.get(f) for f in fields]
            return problem if None in values or all(v == "" for v in values) else None

        def send(chunk: list[Row]) -> list[WriteResult]:
            creates: set[int] = set()   # planned as creates (found later: a lost answer)

            def plan(i: int, entity: dict | None, lost: bool) -> _Plan | WriteResult:
                key = key_of(chunk[i])
                if entity is None:
                    creates.add(i)
                    body = {k: v for k, v in stream.create_defaults.items() if k not in chunk[i]}
                    body.update({k: _entries(k, v) if stream.children.get(k) == "many" else v
                                 for k, v in chunk[i].items()})
                    return _Plan(i, key, [_op("POST", stream.entity_set, body)], None)
                target_id = str(entity.get(stream.id_field) or key)
                if ops := self._changes(stream, entity, chunk[i], stream.children):
                    return _Plan(i, key, ops, target_id)
                action = WriteAction.CREATED if i in creates and lost else WriteAction.UNCHANGED
                return WriteResult(key, action, target_id=target_id)

            return self._rounds(stream, [key_of(row) for row in chunk], fields, plan)

        return write_in_batches(rows, key_of, send, size=len(rows), missing=problem,
                                refuse=refuse)

    def delete(self, name: str, stream: SapStreamConfig, ids: Sequence[str],
               mode: DeleteMode) -> list[WriteResult]:
        """Archive or delete records by the id the engine holds (``id_field``).

        ``stream.deletes[mode]`` says how: properties MERGEd onto the record (a
        business partner is blocked to archive it and marked for archiving to delete
        it, as SAP's API does not delete partners), or ``None`` for an HTTP ``DELETE``.
        A record that is not found is a failed outcome, never counted as done.
        """
        if mode.value not in stream.deletes:
            offered = ", ".join(stream.deletes) or "nothing"
            raise ConfigError(f"SAP stream {name!r} cannot {mode.value} records (it can: "
                              f"{offered}); set deletes.{mode.value} in its stream config")
        values = stream.deletes[mode.value]
        keys = [str(i) for i in ids]

        def plan(i: int, entity: dict | None, lost: bool) -> _Plan | WriteResult:
            key = keys[i]
            done = WriteResult(key, WriteAction.UPDATED, target_id=key)
            if entity is None:
                return done if lost and values is None else WriteResult(
                    key, WriteAction.FAILED, error=(f"SAP has no {stream.entity_set} with "
                                                    f"{stream.id_field} {key!r} to {mode.value}"))
            if values is None:
                return _Plan(i, key, [_on(stream, "DELETE", entity)], key)
            if changes := {k: v for k, v in values.items() if not same(entity.get(k), v)}:
                return _Plan(i, key, [_on(stream, "MERGE", entity, changes)], key)
            return done if lost else WriteResult(key, WriteAction.UNCHANGED, target_id=key)

        return self._rounds(stream, keys, [stream.id_field], plan)

    def _rounds(self, stream: SapStreamConfig, keys: list[str], fields: list[str],
                plan: Planner) -> list[WriteResult]:
        """One result per key: plan (from a fresh read) and send records until each has it.

        Each record has its own retry budget (``retry.max_attempts``) for ``$batch``
        calls whose answer was lost; the other chunks go on, and a lost one is read
        again before it is sent again. ``plan`` answers the result of a record that
        needs no call, or its plan.
        """
        results: dict[int, WriteResult] = {}
        conflicts: set[int] = set()
        tries: Counter = Counter()
        lost: set[int] = set()
        limit = self.client.config.retry.max_attempts
        pending = list(range(len(keys)))
        while pending:
            existing = self.fetch(stream, [keys[i] for i in pending], fields)
            plans = []
            for i in pending:
                step = plan(i, existing.get(keys[i]), i in lost)
                if isinstance(step, _Plan):
                    plans.append(step)
                else:
                    results[i] = step
            pending = []
            for chunk in chunks(plans, self.client.config.write_batch_size):
                try:
                    replies = self.client.send_batch(stream.service, [p.ops for p in chunk],
                                                     f"$batch to {stream.entity_set}")
                except (RetriableError, ValueError) as exc:
                    tries.update(p.index for p in chunk)
                    worst = max(tries[p.index] for p in chunk)
                    wait = getattr(exc, "retry_after", None)
                    if worst >= limit:
                        raise RetriableError(
                            f"SAP: $batch to {stream.service} failed {worst} times for the "
                            f"same records ({chunk[0].key!r}...): {exc}",
                            retry_after=wait) from None
                    log.info("SAP: $batch answer lost (%s); re-reading %d records and "
                             "retrying", exc, len(chunk))
                    self.client.backoff(worst, wait, f"sap: $batch to {stream.service}")
                    pending.extend(p.index for p in chunk)
                    lost.update(p.index for p in chunk)
                    continue
                for plan_, reply in zip(chunk, replies, strict=True):
                    result = self._outcome(stream, plan_, reply, conflicts)
                    if result is None:
                        pending.append(plan_.index)
                    else:
                        results[plan_.index] = result
        return [results[i] for i in range(len(keys))]

    def _outcome(self, stream: SapStreamConfig, plan: _Plan, reply: batch.Part,
                 conflicts: set[int]) -> WriteResult | None:
        """The record's result; None when it should be read and written again."""
        if isinstance(reply, list) and all(m.ok for m in reply):
            if plan.existing_id is not None:
                return WriteResult(plan.key, WriteAction.UPDATED, target_id=plan.existing_id)
            try:
                target_id = str(json.loads(reply[0].body)["d"][stream.id_field])
            except (ValueError, KeyError, TypeError, IndexError):
                raise FatalError(f"SAP created a {stream.entity_set} for {plan.key!r} but its "
                                 f"answer has no {stream.id_field}") from None
            return WriteResult(plan.key, WriteAction.CREATED, target_id=target_id)
        error = reply if isinstance(reply, batch.Message) else next(m for m in reply if not m.ok)
        if error.status == 412 and plan.index not in conflicts:
            conflicts.add(plan.index)
            log.info("SAP: %s %r changed since it was read (412); reading it again",
                     stream.entity_set, plan.key)
            return None
        reason = describe_error(error.status or 0, error.body)
        if error.status == 412:
            reason += " - changed again while being written; the next run retries it"
        return WriteResult(plan.key, WriteAction.FAILED, error=reason)

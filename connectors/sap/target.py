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
from crm2erp.connectors.sap import batch
from crm2erp.connectors.sap.client import SapClient, describe_error
from crm2erp.connectors.sap.config import SapStreamConfig
from crm2erp.connectors.sap.odata import literal, parse_date, to_wire
from crm2erp.connectors.sap.rows import clean, key_text
from crm2erp.connectors.toolkit.batches import chunks
from crm2erp.connectors.toolkit.targets import rows_by_key
from crm2erp.connectors.toolkit.values import same_value
from crm2erp.errors import ConfigError, FatalError, RetriableError

log = logging.getLogger(__name__)
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def _wire(value: Any) -> Any:
    return to_wire(value) if isinstance(value, Decimal | dt.date | dt.time) else value


def same(current: Any, desired: Any) -> bool:
    """Whether the value SAP holds already equals the one we would send (two
    ``/Date(...)/`` texts: the same instant, whatever the offset suffix)."""
    new = _wire(desired)
    if isinstance(current, str) and isinstance(new, str) and current.startswith("/Date(") \
            and current != new:
        try:
            return parse_date(current) == parse_date(new)
        except ValueError:
            return False
    return same_value(current, new)


#: the flag SAP sets on the standard entry of each communication kind of an address
DEFAULT_FLAGS = {"to_PhoneNumber": "IsDefaultPhoneNumber",
                 "to_MobilePhoneNumber": "IsDefaultPhoneNumber",
                 "to_FaxNumber": "IsDefaultFaxNumber",
                 "to_EmailAddress": "IsDefaultEmailAddress"}


def _is_nav(name: str, value: Any) -> bool:
    """A navigation property inside a child row (``to_PhoneNumber`` of an address)."""
    return name.startswith("to_") and isinstance(value, dict | list)


def _entries(nav: str, value: Any) -> list[dict]:
    """The children sent for a to-many ``nav``: a dict is one entry, entries without
    any value are dropped (a CRM field left empty), nested ones likewise, and the first
    communication entry is the standard one."""
    items = [value] if isinstance(value, dict) else list(value or [])
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        entry = {k: _entries(k, v) if _is_nav(k, v) else v for k, v in item.items()}
        if any(v not in (None, "", []) for k, v in entry.items()
               if k != DEFAULT_FLAGS.get(nav)):
            out.append(entry)
    flag = DEFAULT_FLAGS.get(nav)
    if flag:
        for i, entry in enumerate(out):
            entry.setdefault(flag, i == 0)
    return out


class _Plan:
    """The calls that bring one record up to date, and how to read its id after."""

    def __init__(self, index: int, key: str, ops: list[batch.Message], existing_id: str | None):
        self.index, self.key, self.ops, self.existing_id = index, key, ops, existing_id


class SapWriter:
    def __init__(self, client: SapClient):
        self.client = client

    # -- look-ups ------------------------------------------------------------
    def _require_key(self, name: str, stream: SapStreamConfig) -> list[str]:
        if not stream.writable:
            raise ConfigError(f"SAP stream {name!r} is read-only: set external_id (the "
                              "properties writes match on) in its stream config to write it")
        return stream.external_id

    def fetch(self, stream: SapStreamConfig, keys: Sequence[str],
              fields: list[str] | None = None) -> dict[str, dict]:
        """Raw entities (``__metadata`` kept) by external key (or by ``fields``)."""
        fields = fields or stream.external_id

        def fetch_chunk(chunk: list[str]) -> Iterator[tuple[str, dict]]:
            terms = []
            for key in chunk:
                values = key.split("|") if len(fields) > 1 else [key]
                terms.append(" and ".join(f"{f} eq {literal(v)}"
                                          for f, v in zip(fields, values, strict=False)))
            query = {"$filter": " or ".join(f"({t})" for t in terms), "$format": "json"}
            if stream.expand:
                query["$expand"] = ",".join(stream.expand)
            for entity in self.client.entities(stream, query):
                yield key_text(entity, fields), entity

        return rows_by_key(keys, self.client.config.lookup_chunk, fetch_chunk)

    def lookup(self, name: str, stream: SapStreamConfig, keys: Sequence[str]) -> Mapping[str, Row]:
        self._require_key(name, stream)
        return {k: clean(v) for k, v in self.fetch(stream, keys).items()}

    # -- planning ------------------------------------------------------------
    def _relative(self, stream: SapStreamConfig, uri: str) -> str:
        marker = f"/{stream.service}/"
        return uri.split(marker, 1)[1] if marker in uri else uri

    def _create(self, stream: SapStreamConfig, row: Row) -> batch.Message:
        body = {k: v for k, v in stream.create_defaults.items() if k not in row}
        for name, value in row.items():
            kind = stream.children.get(name)
            if kind == "many":
                body[name] = _entries(name, value)
            else:
                body[name] = value
        data = json.dumps(body, default=to_wire).encode()
        return batch.Message("POST", stream.entity_set, headers=dict(_JSON), body=data)

    def _merge(self, stream: SapStreamConfig, entity: dict, changes: dict) -> batch.Message:
        meta = entity.get("__metadata") or {}
        headers = dict(_JSON)
        if meta.get("etag"):
            headers["If-Match"] = meta["etag"]
        data = json.dumps(changes, default=to_wire).encode()
        return batch.Message("MERGE", self._relative(stream, meta.get("uri", "")),
                             headers=headers, body=data)

    def _remove(self, stream: SapStreamConfig, entity: dict) -> batch.Message:
        meta = entity.get("__metadata") or {}
        headers = {"If-Match": meta["etag"]} if meta.get("etag") else {}
        return batch.Message("DELETE", self._relative(stream, meta.get("uri", "")),
                             headers=headers)

    def _add(self, stream: SapStreamConfig, parent: dict, nav: str, child: dict) -> batch.Message:
        uri = self._relative(stream, (parent.get("__metadata") or {}).get("uri", ""))
        return batch.Message("POST", f"{uri}/{nav}", headers=dict(_JSON),
                             body=json.dumps(child, default=to_wire).encode())

    def _update(self, stream: SapStreamConfig, entity: dict, row: Row) -> list[batch.Message]:
        header = {k: v for k, v in row.items()
                  if k not in stream.children and not same(entity.get(k), v)}
        ops = [self._merge(stream, entity, header)] if header else []
        for nav, kind in stream.children.items():
            if nav not in row or row[nav] is None:
                continue
            current = entity.get(nav)
            if kind == "one":
                if isinstance(current, dict) and isinstance(row[nav], dict):
                    diff = {k: v for k, v in row[nav].items() if not same(current.get(k), v)}
                    if diff:
                        ops.append(self._merge(stream, current, diff))
                continue
            ops += self._sync(stream, entity, nav, row[nav])
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
        have = current["results"]
        flag = DEFAULT_FLAGS.get(nav)
        ops: list[batch.Message] = []
        if flag:
            owned = next((h for h in have if h.get(flag)), None)
            if not desired:   # emptied or never set: nothing here is provably ours
                return []
            first, *rest = desired
            if owned is None:
                ops.append(self._add(stream, parent, nav, first))
            else:
                ops += self._merge_child(stream, owned, first)
            for extra in rest:
                if not any(all(same(h.get(k), v) for k, v in extra.items() if k != flag)
                           for h in have):
                    ops.append(self._add(stream, parent, nav, extra))
            return ops
        for i, child in enumerate(desired):
            if i < len(have):
                ops += self._merge_child(stream, have[i], child)
            else:
                ops.append(self._add(stream, parent, nav, child))
        return ops

    def _merge_child(self, stream: SapStreamConfig, current: dict,
                     child: dict) -> list[batch.Message]:
        diff = {k: v for k, v in child.items()
                if not _is_nav(k, v) and not same(current.get(k), v)}
        ops = [self._merge(stream, current, diff)] if diff else []
        for nav, value in child.items():
            if _is_nav(nav, value):
                ops += self._sync(stream, current, nav, value)
        return ops

    # -- writing ---------------------------------------------------------------
    def upsert(self, name: str, stream: SapStreamConfig, rows: Sequence[Row]) -> list[WriteResult]:
        fields = self._require_key(name, stream)
        results: list[WriteResult | None] = [None] * len(rows)
        pending = []
        for i, row in enumerate(rows):
            key = key_text(row, fields)
            values = [row.get(f) for f in fields]
            if None in values or all(v == "" for v in values):
                results[i] = WriteResult(key, WriteAction.FAILED, error=(
                    f"{', '.join(fields)} must be set: SAP records are matched on it"))
            else:
                pending.append(i)
        creates: set[int] = set()   # planned as creates (found later: a lost answer)

        def plan(indices: list[int], lost: set[int]) -> list[_Plan]:
            existing = self.fetch(stream, [key_text(rows[i], fields) for i in indices])
            plans = []
            for i in indices:
                key = key_text(rows[i], fields)
                entity = existing.get(key)
                if entity is None:
                    plans.append(_Plan(i, key, [self._create(stream, rows[i])], None))
                    creates.add(i)
                    continue
                ops = self._update(stream, entity, rows[i])
                target_id = str(entity.get(stream.id_field) or key)
                if ops:
                    plans.append(_Plan(i, key, ops, target_id))
                else:
                    action = WriteAction.CREATED if i in creates and i in lost else \
                        WriteAction.UNCHANGED
                    results[i] = WriteResult(key, action, target_id=target_id)
            return plans

        self._rounds(stream, pending, plan, results)
        return [r for r in results if r is not None]

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
        results: list[WriteResult | None] = [None] * len(ids)

        def plan(indices: list[int], lost: set[int]) -> list[_Plan]:
            existing = self.fetch(stream, [str(ids[i]) for i in indices], [stream.id_field])
            plans = []
            for i in indices:
                key = str(ids[i])
                entity = existing.get(key)
                done = WriteResult(key, WriteAction.UPDATED, target_id=key)
                if entity is None:
                    results[i] = done if i in lost and values is None else WriteResult(
                        key, WriteAction.FAILED, error=(
                            f"SAP has no {stream.entity_set} with {stream.id_field} {key!r} "
                            f"to {mode.value}"))
                elif values is None:
                    plans.append(_Plan(i, key, [self._remove(stream, entity)], key))
                elif changes := {k: v for k, v in values.items()
                                 if not same(entity.get(k), v)}:
                    plans.append(_Plan(i, key, [self._merge(stream, entity, changes)], key))
                else:
                    results[i] = done if i in lost else WriteResult(
                        key, WriteAction.UNCHANGED, target_id=key)
            return plans

        self._rounds(stream, list(range(len(ids))), plan, results)
        return [r for r in results if r is not None]

    def _rounds(self, stream: SapStreamConfig, pending: list[int],
                plan: Callable[[list[int], set[int]], list[_Plan]], results: list) -> None:
        """Plan (from a fresh read) and send records until each has its result.

        Each record has its own retry budget (``retry.max_attempts``) for ``$batch``
        calls whose answer was lost; the other chunks go on, and a lost one is read
        again before it is sent again. ``plan(indices, lost)`` stores the results of
        records that need no call and returns the others' plans.
        """
        conflicts: Counter = Counter()
        tries: Counter = Counter()
        lost: set[int] = set()
        limit = self.client.config.retry.max_attempts
        while pending:
            plans = plan(pending, lost)
            pending = []
            for chunk in chunks(plans, self.client.config.write_batch_size):
                try:
                    replies = self._send(stream, chunk)
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
                    self.client.http.backoff(worst, wait, f"sap: $batch to {stream.service}")
                    pending.extend(p.index for p in chunk)
                    lost.update(p.index for p in chunk)
                    continue
                for plan_, reply in zip(chunk, replies, strict=True):
                    if self._outcome(stream, plan_, reply, conflicts, results):
                        pending.append(plan_.index)

    def _send(self, stream: SapStreamConfig, plans: list[_Plan]) -> list[batch.Part]:
        body, content_type = batch.encode([p.ops for p in plans])
        path = f"{self.client.config.service_path(stream.service)}/$batch"
        resp = self.client.write(stream.service, "POST", path, data=body,
                                 headers={"Content-Type": content_type,
                                          "Accept": "multipart/mixed"})
        if resp.status_code >= 400:
            raise FatalError(f"SAP refused the $batch to {stream.service}: "
                             f"{describe_error(resp.status_code, resp.content)}")
        parts = batch.decode(resp.content, resp.headers.get("Content-Type", ""))
        if len(parts) != len(plans):
            raise ValueError(f"$batch answered {len(parts)} parts for {len(plans)} changesets")
        for part in parts:   # warnings SAP attached to a write that went through
            for message in part if isinstance(part, list) else [part]:
                if 200 <= (message.status or 0) < 300:
                    self.client.note(message.headers, f"$batch to {stream.entity_set}")
        return parts

    def _outcome(self, stream: SapStreamConfig, plan: _Plan, reply: batch.Part,
                 conflicts: Counter, results: list) -> bool:
        """Store the record's result; True when it should be read and written again."""
        if isinstance(reply, list) and all(200 <= (m.status or 0) < 300 for m in reply):
            if plan.existing_id is not None:
                results[plan.index] = WriteResult(plan.key, WriteAction.UPDATED,
                                                  target_id=plan.existing_id)
                return False
            try:
                created = json.loads(reply[0].body)["d"]
                target_id = str(created[stream.id_field])
            except (ValueError, KeyError, TypeError, IndexError):
                raise FatalError(f"SAP created a {stream.entity_set} for {plan.key!r} but its "
                                 f"answer has no {stream.id_field}") from None
            results[plan.index] = WriteResult(plan.key, WriteAction.CREATED, target_id=target_id)
            return False
        error = reply if isinstance(reply, batch.Message) else next(
            m for m in reply if not 200 <= (m.status or 0) < 300)
        if error.status == 412 and conflicts[plan.index] == 0:
            conflicts[plan.index] += 1
            log.info("SAP: %s %r changed since it was read (412); reading it again",
                     stream.entity_set, plan.key)
            return True
        reason = describe_error(error.status or 0, error.body)
        if error.status == 412:
            reason += " - changed again while being written; the next run retries it"
        results[plan.index] = WriteResult(plan.key, WriteAction.FAILED, error=reason)
        return False

"""Writing to Odoo: upsert by a reference field, in batches.

For each batch: one ``search_read`` finds the records whose ``key_field``
(``ref`` for partners, ``origin`` for sale orders) already holds the row's
key; those are updated with ``write`` (one call per record: Odoo's ``write``
gives all ids the same values) and the rest are created with one ``create``
call taking the whole list.

``create`` is not idempotent, so it is never retried blindly: when a create
call fails in transit (timeout, 5xx, a cut reply) the writer searches the keys
again and creates only the ones still missing. Odoo creates a list in one
transaction, so a refused record (``ValidationError``) refuses the whole call;
the writer then splits the call in halves until the refused records are alone,
so only those fail (the toolkit's ``batches.isolate``; ``action_confirm`` too).

Embedded children (order lines) become x2many commands: ``[0, 0, vals]`` to
add, ``[5, 0, 0]`` to clear. On update the lines are only replaced when they
differ from the current ones, because Odoo refuses to delete the lines of a
confirmed order. ``references`` turn codes into many2one ids (country code ->
``country_id``, product code -> ``product_id``), and streams with
``confirm: true`` get ``action_confirm`` for written records still in draft.

``child_partners`` (res.partner streams) write row fields such as
``invoice_address`` to child partners (``parent_id``, ``type: invoice``). The
integration's child of a type carries ``ref = "<parent key>/<type>"``: it is
found by that ref and updated in place (upserted like any record, so a lost
create reply does not double it), archived when the row no longer has a value,
and brought back when it has one again. Children without such a ref (created by
Odoo users) are never touched.

Deletes and archives work on the Odoo ids the engine holds; an id that is not
there (archived ones included) is :meth:`WriteResult.not_found`, one that is
not an id fails too.
"""

from __future__ import annotations

__all__ = ["OdooWriter"]

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.odoo.config import OdooConfig, OdooStreamConfig, ReferenceConfig
from crm2erp.connectors.odoo.rpc import OdooRecordError, OdooRpc
from crm2erp.connectors.toolkit.batches import chunks, isolate
from crm2erp.connectors.toolkit.creates import create_unless_found
from crm2erp.connectors.toolkit.records import as_id, for_found_ids
from crm2erp.connectors.toolkit.writer import required_setting

_DRAFT = ("draft", "sent")
T = TypeVar("T")


class _Refused(Exception):
    """A row that cannot be sent (bad key, unknown code); becomes a FAILED result."""


class OdooWriter:
    def __init__(self, rpc: OdooRpc, config: OdooConfig):
        self.rpc, self.config = rpc, config

    # -- values ----------------------------------------------------------
    def _resolve(self, refs: dict[str, ReferenceConfig], rows: list[Row]) -> dict:
        """code -> id for every reference code used in ``rows`` (one search per rule)."""
        table: dict[tuple[str, str], dict[str, int]] = {}
        for name, ref in refs.items():
            codes = sorted({str(r[name]) for r in rows if r.get(name) not in (None, "")})
            found: dict[str, int] = {}
            if codes:
                for rec in self.rpc.execute_kw(ref.model, "search_read",
                                               [[[ref.by, "in", codes]]],
                                               {"fields": ["id", ref.by],
                                                "context": {"active_test": False}}) or []:
                    found.setdefault(str(rec[ref.by]), int(rec["id"]))
            table[(ref.model, ref.by)] = found
        return table

    def _values(self, model: str, refs: dict[str, ReferenceConfig], table: dict,
                row: Row) -> dict[str, Any]:
        types = self.rpc.field_types(model)
        vals: dict[str, Any] = {}
        for name, value in row.items():
            if name in refs:
                ref = refs[name]
                if value in (None, ""):
                    vals[ref.field] = False
                    continue
                found = table[(ref.model, ref.by)].get(str(value))
                if found is None:
                    raise _Refused(f"no {ref.model} with {ref.by} = {value!r} (for {name}); "
                                   f"create it in Odoo or fix the mapping")
                vals[ref.field] = found
                continue
            kind = types.get(name, {}).get("type")
            if kind == "many2one" and isinstance(value, str):
                if not value.strip().isdigit():
                    raise _Refused(f"{name} must be an Odoo id, got {value!r}")
                value = int(value)
            if value is None and kind != "boolean":
                value = False
            if isinstance(value, Decimal) and kind == "integer":
                value = int(value)
            vals[name] = value
        return vals

    def _prepare(self, stream: OdooStreamConfig, rows: list[Row]) -> list[dict | str]:
        """Each row as ``vals`` (children as lists of vals) or the reason it is refused."""
        table = self._resolve(stream.references, rows)
        child_tables = {f: self._resolve(c.references, [line for r in rows
                                                         for line in (r.get(f) or [])])
                        for f, c in stream.children.items()}
        out: list[dict | str] = []
        for row in rows:
            try:
                plain = {k: v for k, v in row.items() if k not in stream.children}
                vals = self._values(stream.model, stream.references, table, plain)
                for field, child in stream.children.items():
                    if field in row:
                        vals[field] = [self._values(child.model, child.references,
                                                    child_tables[field], line)
                                       for line in (row[field] or [])]
                out.append(vals)
            except _Refused as exc:
                out.append(str(exc))
        return out

    # -- update (write-back) ------------------------------------------------
    def update(self, name: str, stream: OdooStreamConfig, rows: Sequence[Row]) -> list[WriteResult]:
        """``write`` fields of existing records found by ``id``; never creates one."""
        results: list[WriteResult | None] = [None] * len(rows)
        ids: dict[int, int] = {}
        for i, row in enumerate(rows):
            try:
                ids[i] = int(row.get("id"))
            except (TypeError, ValueError):
                results[i] = WriteResult(str(row.get("id") or ""), WriteAction.FAILED,
                                         error=f"stream {name!r}: id {row.get('id')!r} is not "
                                         "an Odoo record id, which update needs")
        wanted = sorted(set(ids.values()))
        known = self._by_id(stream.model, wanted)
        todo = [i for i in ids if ids[i] in known]
        prepared = self._prepare(stream, [{k: v for k, v in rows[i].items() if k != "id"}
                                          for i in todo])
        for i, vals in zip(todo, prepared, strict=True):
            key = str(ids[i])
            if isinstance(vals, str):
                results[i] = WriteResult(key, WriteAction.FAILED, error=vals)
                continue
            try:
                self.rpc.execute_kw(stream.model, "write", [[ids[i]], vals])
                results[i] = WriteResult(key, WriteAction.UPDATED, key)
            except OdooRecordError as exc:
                results[i] = WriteResult(key, WriteAction.FAILED, error=exc.message)
        for i, record_id in ids.items():
            if results[i] is None:
                results[i] = WriteResult(str(record_id), WriteAction.FAILED, error=(
                    f"{stream.model} record {record_id} does not exist (deleted meanwhile?)"))
        return [r for r in results if r is not None]

    # -- upsert ----------------------------------------------------------
    def upsert(self, name: str, stream: OdooStreamConfig, rows: Sequence[Row]) -> list[WriteResult]:
        key_field = required_setting(stream.key_field, f"Odoo stream {name!r} has no key_field; "
                                     "set one (ref, origin, default_code...) to write to it")
        return [result for chunk in chunks(rows, self.config.write_batch_size)
                for result in self._upsert_chunk(stream, key_field, list(chunk))]

    def _upsert_chunk(self, stream: OdooStreamConfig, key_field: str,
                      rows: list[Row]) -> list[WriteResult]:
        if stream.child_partners:
            own = [{k: v for k, v in r.items() if k not in stream.child_partners}
                   for r in rows]
            results = self._upsert_chunk(stream.model_copy(update={"child_partners": {}}),
                                         key_field, own)
            return self._write_child_partners(stream, key_field, rows, results)
        results: list[WriteResult | None] = [None] * len(rows)
        prepared = self._prepare(stream, rows)
        pending: dict[str, tuple[int, dict]] = {}
        for i, (row, vals) in enumerate(zip(rows, prepared, strict=True)):
            key = row.get(key_field)
            if key in (None, ""):
                results[i] = WriteResult("", WriteAction.FAILED,
                                         error=f"{key_field} is empty: it is the upsert key")
            elif isinstance(vals, str):
                results[i] = WriteResult(str(key), WriteAction.FAILED, error=vals)
            else:
                pending[str(key)] = (i, vals)  # the same key twice: the last row wins
        existing = self._find(stream, key_field, list(pending))
        written: list[tuple[int, int]] = []
        for key, (i, vals) in pending.items():
            if key in existing:
                record = existing[key]
                try:
                    self._write(stream, record, vals)
                    results[i] = WriteResult(key, WriteAction.UPDATED, str(record["id"]))
                    written.append((i, record["id"]))
                except OdooRecordError as exc:
                    results[i] = WriteResult(key, WriteAction.FAILED, error=exc.message)
        creates = [(key, i, vals) for key, (i, vals) in pending.items() if key not in existing]
        for key, i, outcome in self._create(stream, key_field, creates):
            if isinstance(outcome, int):
                results[i] = WriteResult(key, WriteAction.CREATED, str(outcome))
                written.append((i, outcome))
            else:
                results[i] = WriteResult(key, WriteAction.FAILED, error=outcome)
        if stream.confirm and written:
            for i, error in self._confirm(stream, written).items():
                old = results[i]
                results[i] = WriteResult(old.key, WriteAction.FAILED, old.target_id,
                                         error=f"written but not confirmed: {error}")
        for i, row in enumerate(rows):
            if results[i] is None:  # an earlier row with the same key
                results[i] = results[pending[str(row[key_field])][0]]
        return results  # type: ignore[return-value]

    def _write_child_partners(self, stream: OdooStreamConfig, key_field: str,
                              rows: list[Row], results: list[WriteResult]) -> list[WriteResult]:
        """Upsert the integration's child partners of the written rows; archive the
        ones whose row field is empty. A child that fails fails its parent's row."""
        children = OdooStreamConfig(model=stream.model, fields=["name", "type", "parent_id",
                                                                "active"],
                                    key_field="ref", references=stream.references,
                                    archived_as_deleted=False)
        wanted: dict[str, tuple[int, str, Row]] = {}
        empty: list[str] = []
        for i, (row, result) in enumerate(zip(rows, results, strict=True)):
            if not result.ok or not result.target_id:
                continue
            for field, kind in stream.child_partners.items():
                ref, value = f"{row[key_field]}/{kind}", row.get(field)
                if value is not None and not isinstance(value, dict):
                    results[i] = WriteResult(result.key, WriteAction.FAILED, result.target_id,
                                             error=f"{field} must be a record of res.partner "
                                             f"fields, got {type(value).__name__}")
                    continue
                values = {k: v for k, v in (value or {}).items() if v not in (None, "")}
                if values:
                    wanted[ref] = (i, field, {**values, "ref": ref, "type": kind,
                                              "parent_id": int(result.target_id),
                                              "active": True})
                else:
                    empty.append(ref)
        outcomes = self._upsert_chunk(children, "ref", [v[2] for v in wanted.values()])
        for (i, field, _), outcome in zip(wanted.values(), outcomes, strict=True):
            if not outcome.ok and results[i].ok:
                results[i] = WriteResult(results[i].key, WriteAction.FAILED,
                                         results[i].target_id, error=(
                                             f"res.partner {results[i].target_id} was written, "
                                             f"but its {field}: {outcome.error}"))
        stale = [rec["id"] for rec in self._find(children, "ref", empty).values()
                 if rec.get("active")]
        if stale:
            self.rpc.execute_kw(stream.model, "write", [stale, {"active": False}])
        return results

    def _find(self, stream: OdooStreamConfig, key_field: str,
              keys: list[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        fields = ["id", key_field, *(["state"] if stream.confirm else []),
                  *(["active"] if "active" in stream.fields else []), *stream.children]
        found: dict[str, dict[str, Any]] = {}
        for rec in self.rpc.execute_kw(stream.model, "search_read",
                                       [[[key_field, "in", keys]]],
                                       {"fields": fields, "order": "id asc",
                                        "context": {"active_test": False}}) or []:
            found.setdefault(str(rec[key_field]), rec)
        return found

    def _write(self, stream: OdooStreamConfig, record: dict[str, Any], vals: dict) -> None:
        vals = dict(vals)
        for field, child in stream.children.items():
            if field not in vals:
                continue
            lines = vals.pop(field)
            if not self._same_children(child.model, record.get(field) or [], lines):
                vals[field] = [[5, 0, 0]] + [[0, 0, line] for line in lines]
        self.rpc.execute_kw(stream.model, "write", [[record["id"]], vals])

    def _same_children(self, model: str, ids: list[int], lines: list[dict]) -> bool:
        if len(ids) != len(lines):
            return False
        if not ids:
            return True
        fields = sorted({f for line in lines for f in line})
        current = {r["id"]: r for r in self.rpc.execute_kw(model, "read", [ids],
                                                           {"fields": fields}) or []}
        for line_id, line in zip(ids, lines, strict=True):
            have = current.get(line_id, {})
            for name, value in line.items():
                got = have.get(name)
                if isinstance(got, list) and got:
                    got = got[0]  # many2one [id, name]
                if _comparable(got) != _comparable(value):
                    return False
        return True

    def _create(self, stream: OdooStreamConfig, key_field: str,
                items: list[tuple[str, int, dict]]) -> list[tuple[str, int, int | str]]:
        """Create ``items`` (key, index, vals); outcome per item: new id or error text.
        A call lost in transit is not repeated blindly (toolkit ``create_unless_found``)."""
        if not items:
            return []
        by_key = {key: (i, vals) for key, i, vals in items}

        def create(keys: list[str]) -> dict[str, int | str]:
            outcomes: dict[str, int | str] = {}

            def call(part: Sequence[str]) -> list[Any]:
                values = [{**stream.defaults, **self._commands(stream, by_key[key][1])}
                          for key in part]
                ids = self.rpc.execute_kw(stream.model, "create", [values], idempotent=False)
                return ids if isinstance(ids, list) else [ids]

            for part, ids in _isolate(keys, call, outcomes.__setitem__):
                outcomes.update((key, int(new_id)) for key, new_id in zip(part, ids,
                                                                          strict=True))
            return outcomes

        def find(keys: list[str]) -> dict[str, int]:
            return {key: int(rec["id"]) for key, rec in self._find(stream, key_field,
                                                                  keys).items()}

        outcomes = create_unless_found(list(by_key), create, find, client=self.rpc.client,
                                       what=f"Odoo create on {stream.model}")
        return [(key, i, outcomes[key]) for key, (i, _) in by_key.items()]

    @staticmethod
    def _commands(stream: OdooStreamConfig, vals: dict) -> dict:
        vals = dict(vals)
        for field in stream.children:
            if field in vals:
                vals[field] = [[0, 0, line] for line in vals[field]]
        return vals

    def _confirm(self, stream: OdooStreamConfig, written: list[tuple[int, int]]) -> dict:
        """``action_confirm`` the written records still in draft; index -> error."""
        ids = [record_id for _, record_id in written]
        states = {r["id"]: r.get("state") for r in self.rpc.execute_kw(
            stream.model, "read", [ids], {"fields": ["state"]}) or []}
        todo = [(i, rid) for i, rid in written if states.get(rid) in _DRAFT]
        errors: dict[int, str] = {}
        _isolate(todo, lambda part: self.rpc.execute_kw(
            stream.model, "action_confirm", [[rid for _, rid in part]]),
            lambda item, error: errors.__setitem__(item[0], error))
        return errors

    # -- delete ----------------------------------------------------------
    def delete(self, name: str, stream: OdooStreamConfig, ids: Sequence[str],
               mode: DeleteMode) -> list[WriteResult]:
        if mode is DeleteMode.IGNORE or not ids:
            return [WriteResult(str(i), WriteAction.UNCHANGED, str(i)) for i in ids]

        def act(key: str, record_id: int, _: Any) -> WriteResult:
            try:
                if mode is DeleteMode.ARCHIVE:
                    self.rpc.execute_kw(stream.model, "write", [[record_id], {"active": False}])
                else:
                    self.rpc.execute_kw(stream.model, "unlink", [[record_id]])
                return WriteResult(key, WriteAction.UPDATED, key)
            except OdooRecordError as exc:
                return WriteResult(key, WriteAction.FAILED, error=exc.message)

        def missing(key: str) -> WriteResult:
            if as_id(key) is None:
                return WriteResult(key, WriteAction.FAILED,
                                   error=f"{key!r} is not an Odoo {stream.model} id")
            return WriteResult.not_found(key, stream.model)

        return for_found_ids(ids, lambda wanted: self._by_id(stream.model, wanted), act, missing)

    def _by_id(self, model: str, ids: list[int]) -> dict[int, dict[str, Any]]:
        """The records of ``model`` among ``ids`` (archived ones too), by id."""
        return {rec["id"]: rec for rec in self.rpc.execute_kw(
            model, "search_read", [[["id", "in", ids]]],
            {"fields": ["id"], "context": {"active_test": False}}) or []} if ids else {}


def _isolate(items: Sequence[T], call: Callable[[Sequence[T]], Any],
             failed: Callable[[T, str], None]) -> list[tuple[Sequence[T], Any]]:
    """The toolkit's :func:`isolate` for Odoo calls: Odoo runs a call in one transaction,
    so a refused one (:class:`OdooRecordError`, Odoo's message kept) is split."""
    return isolate(items, call, failed, refused=OdooRecordError,
                   message=lambda exc: getattr(exc, "message", str(exc)))


def _comparable(value: Any) -> Any:
    if value is False or value == "":
        return None
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return round(float(value), 6)
    return value

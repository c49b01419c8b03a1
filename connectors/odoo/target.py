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
so only those fail (the toolkit's ``creates.create_isolated`` and, for
``action_confirm``, ``batches.isolate``). Rows without a key fail before anything
is sent (the toolkit's ``write_in_batches``).

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
from dataclasses import replace
from decimal import Decimal
from typing import Any

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.odoo.config import ChildConfig, OdooConfig, OdooStreamConfig
from crm2erp.connectors.odoo.rpc import OdooRecordError, OdooRpc
from crm2erp.connectors.toolkit.batches import isolate
from crm2erp.connectors.toolkit.creates import create_isolated
from crm2erp.connectors.toolkit.fields import record_value
from crm2erp.connectors.toolkit.records import as_id, for_found_ids
from crm2erp.connectors.toolkit.values import same_rows
from crm2erp.connectors.toolkit.writer import required_setting, write_in_batches

_DRAFT = ("draft", "sent")
#: the integration's child partners of a res.partner stream (``child_partners``)
_CHILD_FIELDS = ["name", "type", "parent_id", "active"]


class _Refused(Exception):
    """A row that cannot be sent (bad key, unknown code); becomes a FAILED result."""


class OdooWriter:
    def __init__(self, rpc: OdooRpc, config: OdooConfig):
        self.rpc, self.config = rpc, config

    # -- values ----------------------------------------------------------
    def _codes(self, part: ChildConfig, rows: list[Row]) -> dict[str, dict]:
        """code -> id per reference rule of ``part`` for every code used in ``rows`` (one
        search per rule), and the same for the lines of each of its children."""
        table: dict[str, dict] = {}
        for name, ref in part.references.items():
            codes = sorted({str(r[name]) for r in rows if r.get(name) not in (None, "")})
            found = self.rpc.records_by(ref.model, ref.by, codes, ["id", ref.by])
            table[name] = {code: int(rec["id"]) for code, rec in found.items()}
        for field, child in getattr(part, "children", {}).items():   # a child has none
            table[field] = self._codes(child, [line for r in rows for line in (r.get(field) or [])])
        return table

    def _values(self, part: ChildConfig, codes: dict[str, dict], row: Row) -> dict[str, Any]:
        """``row`` as Odoo ``vals`` (children as lists of vals); :class:`_Refused` when a
        value cannot be sent."""
        types = self.rpc.field_types(part.model)
        children = getattr(part, "children", {})
        vals: dict[str, Any] = {}
        for name, value in row.items():
            if name in children:
                vals[name] = [self._values(children[name], codes[name], line)
                              for line in (value or [])]
                continue
            if name in part.references:
                ref = part.references[name]
                found = False if value in (None, "") else codes[name].get(str(value))
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
        """Each row as ``vals`` or the reason it is refused."""
        codes = self._codes(stream, rows)
        out: list[dict | str] = []
        for row in rows:
            try:
                out.append(self._values(stream, codes, row))
            except _Refused as exc:
                out.append(str(exc))
        return out

    @staticmethod
    def _call(key: str, target_id: str, call: Callable[..., Any], *args: Any) -> WriteResult:
        """``call(*args)`` as the UPDATED result of record ``key``; FAILED with Odoo's
        message when Odoo refuses it."""
        try:
            call(*args)
        except OdooRecordError as exc:
            return WriteResult(key, WriteAction.FAILED, error=exc.message)
        return WriteResult(key, WriteAction.UPDATED, target_id)

    # -- update (write-back) ------------------------------------------------
    def update(self, name: str, stream: OdooStreamConfig, rows: Sequence[Row]) -> list[WriteResult]:
        """``write`` fields of existing records found by ``id``; never creates one."""
        ids = [as_id(row.get("id")) for row in rows]
        known = self._by_id(stream.model, sorted({i for i in ids if i is not None}))
        todo = [pos for pos, record_id in enumerate(ids) if record_id in known]
        prepared = dict(zip(todo, self._prepare(stream, [
            {k: v for k, v in rows[pos].items() if k != "id"} for pos in todo]), strict=True))

        def result(pos: int, record_id: int | None) -> WriteResult:
            key, vals = str(record_id), prepared.get(pos)
            if record_id is None:
                return WriteResult(str(rows[pos].get("id") or ""), WriteAction.FAILED,
                                   error=f"stream {name!r}: id {rows[pos].get('id')!r} is not "
                                   "an Odoo record id, which update needs")
            if vals is None:
                return WriteResult(key, WriteAction.FAILED, error=(
                    f"{stream.model} record {record_id} does not exist (deleted meanwhile?)"))
            if isinstance(vals, str):
                return WriteResult(key, WriteAction.FAILED, error=vals)
            return self._call(key, key, self.rpc.execute_kw, stream.model, "write",
                              [[record_id], vals])

        return [result(pos, record_id) for pos, record_id in enumerate(ids)]

    # -- upsert ----------------------------------------------------------
    def upsert(self, name: str, stream: OdooStreamConfig, rows: Sequence[Row]) -> list[WriteResult]:
        key_field = required_setting(stream.key_field, f"Odoo stream {name!r} has no key_field; "
                                     "set one (ref, origin, default_code...) to write to it")
        return write_in_batches(rows, lambda row: row.get(key_field),
                                lambda chunk: self._upsert_chunk(stream, key_field, chunk),
                                size=self.config.write_batch_size,
                                missing=f"{key_field} is empty: it is the upsert key")

    def _upsert_chunk(self, stream: OdooStreamConfig, key_field: str,
                      rows: list[Row]) -> list[WriteResult]:
        """Rows whose key is set: existing records (found by key) written, the others
        created, the written ones confirmed; the same key twice: the last row wins."""
        if stream.child_partners:
            own = [{k: v for k, v in r.items() if k not in stream.child_partners}
                   for r in rows]
            results = self._upsert_chunk(stream.model_copy(update={"child_partners": {}}),
                                         key_field, own)
            return self._write_child_partners(stream, key_field, rows, results)
        prepared = self._prepare(stream, rows)
        pending = {str(row[key_field]): vals for row, vals in zip(rows, prepared, strict=True)
                   if not isinstance(vals, str)}
        existing = self._find(stream, key_field, list(pending))
        done: dict[str, WriteResult] = {}
        for key, vals in pending.items():
            if key in existing:
                done[key] = self._call(key, str(existing[key]["id"]), self._write, stream,
                                       existing[key], vals)
        done.update(self._create(stream, key_field, {
            key: vals for key, vals in pending.items() if key not in existing}))
        if stream.confirm:
            self._confirm(stream, done)
        return [WriteResult(str(row[key_field]), WriteAction.FAILED, error=vals)
                if isinstance(vals, str) else done[str(row[key_field])]
                for row, vals in zip(rows, prepared, strict=True)]

    def _write_child_partners(self, stream: OdooStreamConfig, key_field: str,
                              rows: list[Row], results: list[WriteResult]) -> list[WriteResult]:
        """Upsert the integration's child partners of the written rows; archive the
        ones whose row field is empty. A child that fails fails its parent's row."""
        children = OdooStreamConfig(model=stream.model, fields=_CHILD_FIELDS, key_field="ref",
                                    references=stream.references, archived_as_deleted=False)
        wanted: dict[str, tuple[int, str, Row]] = {}
        empty: list[str] = []
        for i, (row, result) in enumerate(zip(rows, results, strict=True)):
            if not result.ok or not result.target_id:
                continue
            for field, kind in stream.child_partners.items():
                ref = f"{row[key_field]}/{kind}"
                try:
                    values = record_value(row.get(field), field)
                except ValueError as exc:
                    results[i] = replace(result, action=WriteAction.FAILED, error=str(exc))
                    continue
                if values:
                    wanted[ref] = (i, field, {**values, "ref": ref, "type": kind,
                                              "parent_id": int(result.target_id),
                                              "active": True})
                else:
                    empty.append(ref)
        outcomes = self._upsert_chunk(children, "ref", [v[2] for v in wanted.values()])
        for (i, field, _), outcome in zip(wanted.values(), outcomes, strict=True):
            if not outcome.ok and results[i].ok:
                results[i] = replace(results[i], action=WriteAction.FAILED, error=(
                    f"res.partner {results[i].target_id} was written, but its {field}: "
                    f"{outcome.error}"))
        stale = [rec["id"] for rec in self._find(children, "ref", empty).values()
                 if rec.get("active")]
        if stale:
            self.rpc.execute_kw(stream.model, "write", [stale, {"active": False}])
        return results

    def _find(self, stream: OdooStreamConfig, key_field: str,
              keys: list[str]) -> dict[str, dict[str, Any]]:
        fields = ["id", key_field, *(["state"] if stream.confirm else []),
                  *(["active"] if "active" in stream.fields else []), *stream.children]
        return self.rpc.records_by(stream.model, key_field, keys, fields, order="id asc")

    def _write(self, stream: OdooStreamConfig, record: dict[str, Any], vals: dict) -> None:
        """``write`` ``vals``; children replaced (``[5, 0, 0]`` then adds) only when they
        differ from the record's current ones."""
        vals = dict(vals)
        for field, child in stream.children.items():
            if field in vals:
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
        return same_rows([current.get(line_id, {}) for line_id in ids], lines, _same)

    def _create(self, stream: OdooStreamConfig, key_field: str,
                new: dict[str, dict]) -> dict[str, WriteResult]:
        """Create the records of ``new`` (key -> vals); a result per key, in their order.
        A call lost in transit is not repeated blindly (toolkit ``create_isolated``)."""
        def create(values: list[dict]) -> list[Any]:
            ids = self.rpc.execute_kw(stream.model, "create", [[
                {**stream.defaults, **_commands(stream, vals)} for vals in values]],
                idempotent=False)
            return ids if isinstance(ids, list) else [ids]

        def find(keys: list[str]) -> dict[str, int]:
            return {key: int(rec["id"]) for key, rec in self._find(stream, key_field,
                                                                  keys).items()}

        outcomes = create_isolated(new, create, find, client=self.rpc.client,
                                   what=f"Odoo create on {stream.model}",
                                   refused=OdooRecordError, message=_message)
        return {key: WriteResult(key, WriteAction.CREATED, str(outcomes[key]))
                if isinstance(outcomes[key], int) else
                WriteResult(key, WriteAction.FAILED, error=str(outcomes[key])) for key in new}

    def _confirm(self, stream: OdooStreamConfig, done: dict[str, WriteResult]) -> None:
        """``action_confirm`` the written records still in draft; one Odoo refuses fails
        its result (written but not confirmed)."""
        written = {key: int(result.target_id) for key, result in done.items()
                   if result.ok and result.target_id}
        if not written:
            return
        states = {r["id"]: r.get("state") for r in self.rpc.execute_kw(
            stream.model, "read", [list(written.values())], {"fields": ["state"]}) or []}

        def refused(key: str, error: str) -> None:
            done[key] = replace(done[key], action=WriteAction.FAILED,
                                error=f"written but not confirmed: {error}")

        isolate([key for key, rid in written.items() if states.get(rid) in _DRAFT],
                lambda part: self.rpc.execute_kw(stream.model, "action_confirm",
                                                 [[written[key] for key in part]]),
                refused, refused=OdooRecordError, message=_message)

    # -- delete ----------------------------------------------------------
    def delete(self, name: str, stream: OdooStreamConfig, ids: Sequence[str],
               mode: DeleteMode) -> list[WriteResult]:
        if mode is DeleteMode.IGNORE or not ids:
            return [WriteResult(str(i), WriteAction.UNCHANGED, str(i)) for i in ids]
        method, more = ("write", [{"active": False}]) if mode is DeleteMode.ARCHIVE else (
            "unlink", [])

        def act(key: str, record_id: int, _: Any) -> WriteResult:
            return self._call(key, key, self.rpc.execute_kw, stream.model, method,
                              [[record_id], *more])

        def missing(key: str) -> WriteResult:
            if as_id(key) is None:
                return WriteResult(key, WriteAction.FAILED,
                                   error=f"{key!r} is not an Odoo {stream.model} id")
            return WriteResult.not_found(key, stream.model)

        return for_found_ids(ids, lambda wanted: self._by_id(stream.model, wanted), act, missing)

    def _by_id(self, model: str, ids: list[int]) -> dict[int, dict[str, Any]]:
        """The records of ``model`` among ``ids`` (archived ones too), by id."""
        return {rec["id"]: rec for rec in self.rpc.records_by(model, "id", ids, ["id"]).values()}


def _commands(stream: OdooStreamConfig, vals: dict) -> dict:
    """``vals`` with each child list as x2many add commands (``[0, 0, line]``)."""
    return {k: [[0, 0, line] for line in v] if k in stream.children else v
            for k, v in vals.items()}


def _message(exc: Exception) -> str:
    """The text of a refused record: Odoo's own message."""
    return getattr(exc, "message", str(exc))


def _same(got: Any, sent: Any) -> bool:
    """A child line's current value (a many2one as ``[id, name]``) equals the one sent."""
    if isinstance(got, list) and got:
        got = got[0]
    return _comparable(got) == _comparable(sent)


def _comparable(value: Any) -> Any:
    if value is False or value == "":
        return None
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return round(float(value), 6)
    return value

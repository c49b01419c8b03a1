"""What the Tryton writers share: upserts matched on a key, creates and writes in
batches, lookups, and deletes by Tryton id.

Upserts match on a key Tryton can search: the party ``code`` (configurable:
``party.key_field``), the product ``code``, the sale ``reference``. Existing
records are read in one ``search_read``, new ones created with one ``create``
of a list, changed ones updated with one ``write(ids, vals, ids, vals, ...)``;
a refused batch is split so only the refused rows fail (the toolkit's
``batches.isolate``). Deletes take Tryton ids: parties and products are
archived (or deleted, falling back to archive), sales cancelled.
"""

from __future__ import annotations

__all__ = ["TrytonWriter", "KeyedWriter"]

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.toolkit.batches import chunks, isolate
from crm2erp.connectors.toolkit.records import for_found_ids
from crm2erp.connectors.toolkit.results import RowResults
from crm2erp.connectors.tryton.client import TrytonClient
from crm2erp.connectors.tryton.common import NOT_ACTIVE, Lookups, search_in, send_unless_done
from crm2erp.connectors.tryton.config import TrytonConfig
from crm2erp.connectors.tryton.rows import value_at

log = logging.getLogger(__name__)


class TrytonWriter:
    """A stream's writer: ``upsert(rows)``, ``lookup(keys)`` (the rows a read would give,
    by key) and ``delete(ids, mode)``."""

    #: the stream written, its model and the model ``delete`` looks ids up in
    stream: ClassVar[str]
    model: ClassVar[str]

    def __init__(self, client: TrytonClient, config: TrytonConfig, lookups: Lookups,
                 reader: Any):
        self.client, self.config, self.lookups, self.reader = client, config, lookups, reader

    def lookup(self, keys: Sequence[str]) -> Mapping[str, Row]:
        return self.reader.lookup(self.stream, keys)

    def create(self, model: str, results: RowResults, creates: Mapping[int, dict],
               found: Callable[[list[str]], Mapping[str, int]]) -> dict[int, int]:
        """Create ``creates`` (``{row position: values}``) once each (``found(keys)``:
        the ids of the keys that exist after a lost answer); each row CREATED with its
        id or FAILED with Tryton's refusal. Answers ``{row position: new id}``."""
        position = {results.keys[pos]: pos for pos in creates}
        outcomes = send_unless_done(self.client, model, "create",
                                    {results.keys[pos]: vals for pos, vals in creates.items()},
                                    found, batch_size=self.config.write_batch_size)
        made: dict[int, int] = {}
        for key, outcome in outcomes.items():
            if isinstance(outcome, int):
                results.set(position[key], WriteAction.CREATED, str(outcome))
                made[position[key]] = outcome
            else:
                results.fail(position[key], outcome)
        return made

    def by_id(self, ids: list[int], fields: Sequence[str],
              context: dict[str, Any] | None = None) -> dict[int, dict]:
        return {r["id"]: r for r in search_in(self.client, self.model, "id", ids, fields,
                                              context)}

    def delete(self, ids: Sequence[str], mode: DeleteMode) -> list[WriteResult]:
        """Archive (``active = False``) or delete, falling back to archive when refused.

        ``ids`` are Tryton record ids (what upserts returned as ``target_id``, the id the
        engine holds). An id that finds no record is a FAILED result: nothing was deleted.
        """
        model = self.model

        def act(key: str, rid: int, rec: dict) -> WriteResult:
            if mode is DeleteMode.IGNORE:
                return WriteResult(key, WriteAction.UNCHANGED, key)
            note = None
            if mode is DeleteMode.DELETE:
                try:
                    self.client.model(model, "delete", [rid], context=NOT_ACTIVE)
                    return WriteResult(key, WriteAction.UPDATED, key)
                except Exception as exc:  # noqa: BLE001 - any refusal falls back to archive
                    note = f"Tryton refused to delete {model} {key} ({exc}); archived instead"
                    log.info(note)
            if not rec.get("active", True):
                return WriteResult(key, WriteAction.UNCHANGED, key, error=note)
            try:
                self.client.model(model, "write", [rid], {"active": False}, context=NOT_ACTIVE)
                return WriteResult(key, WriteAction.UPDATED, key, error=note)
            except Exception as exc:  # noqa: BLE001
                return WriteResult(key, WriteAction.FAILED, key,
                                   error=f"could not archive {model} {key}: {exc}")

        return for_found_ids(ids, lambda wanted: self.by_id(wanted, ["active"], NOT_ACTIVE),
                             act, lambda key: WriteResult(key, WriteAction.FAILED, error=(
                                 f"no {model} with id {key!r} in Tryton (deleted by hand?); "
                                 f"nothing to {mode.value}")))


class KeyedWriter(TrytonWriter):
    """Parties and products: rows matched on ``key_field`` of ``model``, planned against
    the records found (:meth:`values`), then created and written in batches of
    ``write_batch_size`` through ``written`` (the model or its template)."""

    #: the model written (the searched one or its template)
    written: ClassVar[str]
    #: what a row is called in messages ("party")
    what: ClassVar[str]
    #: where the id of the ``written`` record is in a record found (``template.id``)
    written_id: ClassVar[str] = "id"
    #: what :meth:`values` reads of the records found, after the key
    fields: ClassVar[Sequence[str]]

    @property
    def key_field(self) -> str:
        return "code"

    def existing(self, keys: Sequence[str], fields: Sequence[str]) -> dict[str, dict]:
        """``{key: record}`` of the ``model`` records (archived ones too) with ``keys``."""
        field = self.key_field
        return {r[field]: r for r in search_in(self.client, self.model, field, keys,
                                               [field, *fields], NOT_ACTIVE)}

    def upsert(self, rows: Sequence[Row]) -> list[WriteResult]:
        field = self.key_field
        results = RowResults.keyed(
            rows, lambda row: "" if row.get(field) is None else str(row[field]).strip(),
            missing=f"row has no {field!r} (the key Tryton matches on); fix the outbound "
                    "mapping", twice=lambda key: f"key {key!r} appears twice in one batch")
        existing = self.existing(list(results.keys.values()), self.fields)
        self.prepare(rows, existing)
        creates: dict[int, dict] = {}
        writes: list[tuple[int, int, dict]] = []
        for pos, key in results.keys.items():
            current = existing.get(key)
            try:
                vals = self.values(rows[pos], key, current)
            except ValueError as exc:
                results.fail(pos, f"{self.what} {key!r}: {exc}")
                continue
            if current is None:
                creates[pos] = vals
            elif vals:
                writes.append((pos, value_at(current, self.written_id), vals))
            else:
                results.set(pos, WriteAction.UNCHANGED, str(current["id"]))
        # creates are sent once; a write is sent once too, since it may create children:
        # a lost answer stops the run and the next run plans again from what Tryton holds
        self.create(self.written, results, creates, self.found)
        for part in chunks(writes, self.config.write_batch_size):
            def write(batch: Sequence[tuple[int, int, dict]]) -> None:
                args: list[Any] = []
                for _, rid, vals in batch:
                    args += [[rid], vals]
                self.client.model(self.written, "write", *args, context=NOT_ACTIVE,
                                  idempotent=False)
            for done, _ in isolate(part, write, lambda item, error: results.fail(item[0],
                                                                                 error)):
                for pos, rid, _ in done:
                    results.set(pos, WriteAction.UPDATED, str(rid))
        return self.finish(results.all())

    def prepare(self, rows: Sequence[Row], existing: dict[str, dict]) -> None:
        """Read what :meth:`values` needs for the batch ``rows`` (``existing``: the records
        found by key), before the rows are planned."""

    def values(self, row: Row, key: str, current: dict | None) -> dict[str, Any]:
        """What to create for ``row`` (``current`` None), or what to write to ``current``
        (nothing: the row is UNCHANGED); a ValueError says why the row cannot be written."""
        raise NotImplementedError

    def found(self, keys: list[str]) -> dict[str, int]:
        """The ``written`` ids of the keys that exist now (after a lost create answer)."""
        return {key: rec["id"] for key, rec in self.existing(keys, []).items()}

    def finish(self, results: list[WriteResult]) -> list[WriteResult]:
        return results

"""Write side for parties and products, plus lookups and deletes of every stream.

Upserts match on a key Tryton can search: the party ``code`` (configurable:
``party.key_field``) and the product ``code``. Existing records are read in
one ``search_read``, new ones created with one ``create`` of a list, changed
ones updated with one ``write(ids, vals, ids, vals, ...)``; a refused batch
is split so only the refused rows fail (the toolkit's ``batches.isolate``).

Parties and their phones, e-mails, addresses and relations:
:mod:`crm2erp.connectors.tryton.parties`. Deletes take Tryton ids.
"""

from __future__ import annotations

__all__ = ["PartyProductWriter"]

import logging
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from crm2erp.connectors.base import DeleteMode, Row, WriteAction, WriteResult
from crm2erp.connectors.toolkit.batches import chunks, isolate
from crm2erp.connectors.toolkit.records import for_found_ids
from crm2erp.connectors.toolkit.targets import rows_by_key
from crm2erp.connectors.tryton.client import TrytonClient
from crm2erp.connectors.tryton.common import NOT_ACTIVE, Lookups, send_unless_done
from crm2erp.connectors.tryton.config import TrytonConfig
from crm2erp.connectors.tryton.parties import PartyWriter, party_rows
from crm2erp.connectors.tryton.rows import PARTY_FIELDS, PRODUCT_FIELDS, product_row

log = logging.getLogger(__name__)


class PartyProductWriter:
    """Upserts ``parties`` and ``products``."""

    def __init__(self, client: TrytonClient, config: TrytonConfig, lookups: Lookups):
        self.client, self.config, self.lookups = client, config, lookups
        self.parties = PartyWriter(client, config, lookups)

    # -- shared ----------------------------------------------------------
    def _existing(self, model: str, field: str, keys: Sequence[str],
                  fields: Sequence[str]) -> dict[str, dict]:
        return rows_by_key(keys, 500, lambda part: ((r[field], r) for r in self.client.model(
            model, "search_read", [(field, "in", part)], 0, None, None, list(fields),
            context=NOT_ACTIVE)))

    def _run(self, model: str, key_of: dict[int, str], creates: list[tuple[int, dict]],
             writes: list[tuple[int, int, dict]], results: list[WriteResult | None],
             found: Callable[[list[str]], Mapping[str, int]]) -> None:
        """Create and write in batches; fill ``results`` at each row's position.

        Creates are sent once (``found(keys)``: the ``model`` ids of the keys that
        exist after a lost answer); a write is sent once too, since it may create
        children: a lost answer stops the run and the next run plans again from
        what Tryton holds.
        """
        def fail(item, message):
            results[item[0]] = WriteResult(key_of[item[0]], WriteAction.FAILED, error=message)

        size = self.config.write_batch_size
        position = {key_of[pos]: pos for pos, _ in creates}
        outcomes = send_unless_done(self.client, model, "create",
                                    {key_of[pos]: vals for pos, vals in creates}, found,
                                    batch_size=size)
        for key, outcome in outcomes.items():
            results[position[key]] = (
                WriteResult(key, WriteAction.CREATED, str(outcome)) if isinstance(outcome, int)
                else WriteResult(key, WriteAction.FAILED, error=outcome))
        for part in chunks(writes, size):
            def write(batch):
                args: list[Any] = []
                for _, rid, vals in batch:
                    args += [[rid], vals]
                return self.client.model(model, "write", *args, context=NOT_ACTIVE,
                                         idempotent=False)
            for done, _ in isolate(part, write, fail):
                for pos, rid, _ in done:
                    results[pos] = WriteResult(key_of[pos], WriteAction.UPDATED, str(rid))

    @staticmethod
    def _keys(rows: Sequence[Row], field: str, results: list) -> dict[int, str]:
        """Position -> key for rows with a usable, unique key; others FAILED."""
        key_of, seen = {}, set()
        for pos, row in enumerate(rows):
            key = row.get(field)
            key = str(key).strip() if key is not None else ""
            if not key:
                results[pos] = WriteResult("", WriteAction.FAILED,
                                           error=f"row has no {field!r} (the key Tryton matches "
                                                 "on); fix the outbound mapping")
            elif key in seen:
                results[pos] = WriteResult(key, WriteAction.FAILED,
                                           error=f"key {key!r} appears twice in one batch")
            else:
                seen.add(key)
                key_of[pos] = key
        return key_of

    # -- parties ---------------------------------------------------------
    def upsert_parties(self, rows: Sequence[Row]) -> list[WriteResult]:
        key_field = self.config.party.key_field
        results: list[WriteResult | None] = [None] * len(rows)
        key_of = self._keys(rows, key_field, results)
        existing = self._existing("party.party", key_field, list(key_of.values()),
                                  [key_field, *PARTY_FIELDS])
        creates, writes = self.parties.plan(rows, key_of, existing, results)
        self._run("party.party", key_of, creates, writes, results, lambda keys: {
            key: rec["id"] for key, rec in self._existing(
                "party.party", key_field, keys, [key_field]).items()})
        return results  # type: ignore[return-value]

    # -- products --------------------------------------------------------
    def upsert_products(self, rows: Sequence[Row]) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(rows)
        key_of = self._keys(rows, "code", results)
        existing = self._existing("product.product", "code", list(key_of.values()),
                                  ["code", *PRODUCT_FIELDS])
        defaults = self.config.product_defaults
        creates, writes = [], []
        for pos, key in key_of.items():
            row, current = rows[pos], existing.get(key)
            try:
                tvals = self._template_vals(row, creating=current is None)
            except ValueError as exc:
                results[pos] = WriteResult(key, WriteAction.FAILED, error=f"product {key!r}: {exc}")
                continue
            if current is None:
                tvals.setdefault("type", defaults.type)
                tvals["products"] = [["create", [{"suffix_code": key}]]]
                creates.append((pos, tvals))
                continue
            before = product_row(current)
            changed = {k: v for k, v in tvals.items() if _differs(before, k, v)}
            if changed:
                writes.append((pos, current["template."]["id"], changed))
            else:
                results[pos] = WriteResult(key, WriteAction.UNCHANGED, str(current["id"]))
        # products are written through their template: map template ids back to products
        self._run("product.template", key_of, creates, writes, results, lambda keys: {
            key: rec["template"] for key, rec in self._existing(
                "product.product", "code", keys, ["code", "template"]).items()})
        self._template_to_product(results, key_of)
        return results  # type: ignore[return-value]

    def _template_vals(self, row: Row, *, creating: bool) -> dict[str, Any]:
        vals: dict[str, Any] = {}
        if row.get("name") is not None:
            vals["name"] = str(row["name"]).strip()
        elif creating:
            raise ValueError("a new product needs a name")
        if row.get("list_price") is not None:
            vals["list_price"] = Decimal(str(row["list_price"]))
        elif creating:
            vals["list_price"] = Decimal(0)
        if row.get("type"):
            vals["type"] = row["type"]
        if "active" in row and row["active"] is not None:
            vals["active"] = bool(row["active"])
        if creating:
            defaults = self.config.product_defaults
            uom_name = row.get("uom") or defaults.uom
            uom = self.lookups.uom(uom_name)
            if uom is None:
                raise ValueError(f"unit of measure {uom_name!r} is not in Tryton")
            vals.update(default_uom=uom, sale_uom=uom, salable=True)
            category = row.get("category") or defaults.category
            if category:
                cat = self.lookups.one("product.category", "name", category)
                if cat is None:
                    raise ValueError(f"product category {category!r} is not in Tryton; "
                                     "create it or fix product_defaults.category")
                vals["account_category"] = cat
        return vals

    def _template_to_product(self, results: list, key_of: dict[int, str]) -> None:
        done = (WriteAction.CREATED, WriteAction.UPDATED)
        keys = [r.key for r in results if r and r.action in done]
        if not keys:
            return
        found = self._existing("product.product", "code", keys, ["code"])
        for pos, res in enumerate(results):
            if res and res.action in done and res.key in found:
                results[pos] = WriteResult(res.key, res.action, str(found[res.key]["id"]))

    # -- lookup and delete -----------------------------------------------
    def lookup(self, stream: str, keys: Sequence[str]) -> Mapping[str, Row]:
        if stream == "parties":
            field = self.config.party.key_field
            found = self._existing("party.party", field, keys, [field, *PARTY_FIELDS])
            return {row[field]: row for row in party_rows(self.client, list(found.values()),
                                                          field)}
        found = self._existing("product.product", "code", keys, ["code", *PRODUCT_FIELDS])
        return {k: product_row(p) for k, p in found.items()}

    def delete(self, stream: str, ids: Sequence[str], mode: DeleteMode) -> list[WriteResult]:
        """Archive (``active = False``) or delete, falling back to archive when refused.

        ``ids`` are Tryton record ids (what upserts returned as ``target_id``, the id the
        engine holds). An id that finds no record is a FAILED result: nothing was deleted.
        """
        model = "party.party" if stream == "parties" else "product.product"

        def find(wanted: list[int]) -> dict[int, dict]:
            found = {}
            for part in chunks(wanted, 500):
                found.update({r["id"]: r for r in self.client.model(
                    model, "search_read", [("id", "in", list(part))], 0, None, None,
                    ["active"], context=NOT_ACTIVE)})
            return found

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

        return for_found_ids(ids, find, act, lambda key: WriteResult(
            key, WriteAction.FAILED, error=f"no {model} with id {key!r} in Tryton (deleted by "
            f"hand?); nothing to {mode.value}"))


def _differs(before: dict, key: str, value: Any) -> bool:
    old = before.get(key)
    if isinstance(value, Decimal) and old is not None:
        return Decimal(str(old)) != value
    return old != value

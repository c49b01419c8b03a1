"""The in-memory database behind the Odoo emulator: models, fields and ORM rules.

Only what the connector relies on is modelled, but with Odoo's behaviour:
``write_date`` set by every create/write (UTC, to the second), ``False`` for
empty values, many2one read as ``[id, name]``, x2many commands
(``[0, 0, vals]``, ``[5, 0, 0]``...), ``active_test``, required fields and
selection values checked, ``ValueError: Invalid field`` for unknown fields,
computed amounts on orders and invoices, ``action_confirm`` on sale orders,
the refusal to delete lines of a confirmed order, and a partner's ``child_ids``
(its active child partners: ``parent_id`` points to it; read-only here, children
are created and written as partners of their own).
"""

from __future__ import annotations

__all__ = ["OdooException", "FakeDb", "MODELS", "DATETIME_FORMAT"]

import datetime as dt
from typing import Any

from crm2erp.emulators.kernel.store import RecordStore
from crm2erp.emulators.odoo.domain import DomainError, compile_domain
from crm2erp.emulators.odoo.schema import DEFAULTS, MODELS, STAMP_FIELDS


class OdooException(Exception):
    """An Odoo server exception: ``name`` is the Python class path Odoo reports."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name, self.message = name, message


def _validation(message: str) -> OdooException:
    return OdooException("odoo.exceptions.ValidationError", message)


_PARENT = {"sale.order.line": "order_id", "account.move.line": "move_id"}
_INVERSE = {("res.partner", "child_ids"): "parent_id"}  # one2many read from its inverse
_TAX = 0.19
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class FakeDb(RecordStore):
    """Records per model; every public method takes the ``execute_kw`` arguments.

    ``create_date`` and ``write_date`` come from the store's logical clock (naive
    UTC, to the second, as Odoo keeps them); one :meth:`call` that changes data is
    one tick, so the records one call writes share a ``write_date``.
    """

    def __init__(self, *, seed: int, start: dt.datetime):
        super().__init__(MODELS, seed=seed, start=start)

    def now(self) -> str:
        """The clock as Odoo writes a datetime: ``2025-01-06 08:00:00``."""
        return self.clock.strftime(DATETIME_FORMAT)

    # -- helpers -----------------------------------------------------------
    def fields(self, model: str) -> dict[str, dict[str, Any]]:
        if model not in MODELS:
            raise OdooException("odoo.exceptions.UserError", f"Object {model} doesn't exist")
        return {**STAMP_FIELDS, **MODELS[model]}

    def _check_vals(self, model: str, vals: dict[str, Any], creating: bool) -> None:
        fields = self.fields(model)
        for name, value in vals.items():
            spec = fields.get(name)
            if spec is None:
                raise OdooException("builtins.ValueError",
                                    f"Invalid field '{name}' on model '{model}'")
            if spec["selection"] and value not in (False, None, *spec["selection"]):
                raise OdooException("builtins.ValueError",
                                    f"Wrong value for {model}.{name}: {value!r}")
            if spec["type"] == "many2one" and value not in (False, None):
                if not isinstance(value, int) or value not in self.tables[spec["relation"]]:
                    raise _validation(f"The operation cannot be completed: {model}.{name} "
                                      f"refers to {spec['relation']} id {value!r}, which "
                                      "does not exist.")
        merged = vals if creating else {}
        for name, spec in MODELS[model].items():
            if spec["required"] and creating and merged.get(name) in (None, False, ""):
                raise _validation(f"The operation cannot be completed: a mandatory field is "
                                  f"not set.\n- Model: {model}\n- Field: {name}")
        if model == "res.partner" and (creating or "name" in vals) \
                and not vals.get("name") and vals.get("type", "contact") == "contact":
            raise _validation("Contacts require a name")
        if model == "crm.lead" and vals.get("probability") not in (None, False) \
                and not 0 <= float(vals["probability"]) <= 100:
            raise _validation("The probability of closing the deal should be between "
                              "0% and 100%!")

    def _apply(self, model: str, record: dict[str, Any], vals: dict[str, Any]) -> None:
        fields = self.fields(model)
        for name, value in vals.items():
            spec = fields[name]
            if spec["computed"] or (model, name) in _INVERSE:
                continue
            if spec["type"] == "one2many":
                self._commands(model, record, name, spec["relation"], value)
            else:
                record[name] = None if value is False and spec["type"] != "boolean" else value
        self._compute(model, record)

    def _commands(self, model: str, record: dict, name: str, child: str, commands) -> None:
        ids: list[int] = record.setdefault(name, [])
        parent_field = _PARENT[child]
        for command in commands or []:
            code = command[0]
            if code in (2, 3, 5, 6) and model == "sale.order" \
                    and record.get("state") in ("sale", "done") and (ids or code == 6):
                raise OdooException("odoo.exceptions.UserError",
                                    "You can not remove an order line once the sales order "
                                    "is confirmed.\nYou should rather set the quantity to 0.")
            if code == 0:
                new = self._create_one(child, {**command[2], parent_field: record["id"]})
                ids.append(new)
            elif code == 1:
                self.write(child, [command[1]], command[2])
            elif code in (2, 3):
                ids.remove(command[1])
                if code == 2:
                    self.tables[child].pop(command[1], None)
            elif code == 4:
                ids.append(command[1])
            elif code == 5:
                for old in ids:
                    self.tables[child].pop(old, None)
                ids.clear()
            elif code == 6:
                ids[:] = list(command[2])

    def _compute(self, model: str, rec: dict[str, Any]) -> None:
        if model == "res.partner":
            country = self.tables["res.country"].get(rec.get("country_id") or 0)
            rec["country_code"] = country["code"] if country else None
        elif model in ("sale.order.line", "account.move.line"):
            qty = rec.get("product_uom_qty", rec.get("quantity")) or 0.0
            price = (rec.get("price_unit") or 0.0) * (1 - (rec.get("discount") or 0.0) / 100)
            rec["price_subtotal"] = round(qty * price, 2)
            if not rec.get("name") and rec.get("product_id"):
                rec["name"] = self.tables["product.product"][rec["product_id"]]["name"]
        elif model == "sale.order":
            lines = [self.tables["sale.order.line"][i] for i in rec.get("order_line", [])]
            untaxed = round(sum(line["price_subtotal"] for line in lines), 2)
            rec["amount_untaxed"], rec["amount_tax"] = untaxed, round(untaxed * _TAX, 2)
            rec["amount_total"] = round(untaxed + rec["amount_tax"], 2)
            rec["name"] = rec.get("name") or f"S{rec['id']:05d}"
        elif model == "crm.lead":
            stage = self.tables["crm.stage"].get(rec.get("stage_id") or 0)
            rec["won_status"] = ("won" if stage and stage["is_won"] else "lost"
                                 if not rec.get("active") else "pending")

    def _create_one(self, model: str, vals: dict[str, Any], stamp: str | None = None) -> int:
        self._check_vals(model, vals, creating=True)
        new_id = self.next_number(model)
        now = stamp or self.now()
        record = {"id": new_id, "create_date": now, "write_date": now,
                  **{k: None for k in MODELS[model]}, **DEFAULTS.get(model, {})}
        for name, spec in MODELS[model].items():
            if spec["type"] == "one2many":
                record[name] = []
        self.put(model, new_id, record)
        self._apply(model, record, vals)
        return new_id

    def _display(self, model: str, record_id: int | None) -> Any:
        record = self.tables[model].get(record_id or 0)
        return [record_id, record.get("name") or ""] if record else False

    def _wire(self, model: str, rec: dict[str, Any], fields: list[str] | None) -> dict:
        spec = self.fields(model)
        names = fields or list(spec)
        out: dict[str, Any] = {"id": rec["id"]}
        for name in names:
            if name not in spec:
                raise OdooException("builtins.ValueError",
                                    f"Invalid field '{name}' on model '{model}'")
            kind, value = spec[name]["type"], rec.get(name)
            if name == "display_name":
                value = rec.get("name")
            if kind == "many2one":
                out[name] = self._display(spec[name]["relation"], value)
            elif (model, name) in _INVERSE:
                inverse = _INVERSE[(model, name)]
                out[name] = [i for i, r in self.tables[spec[name]["relation"]].items()
                             if r.get(inverse) == rec["id"] and r.get("active", True)]
            elif kind == "one2many":
                out[name] = list(value or [])
            else:
                out[name] = False if value is None else value
        return out

    def _ordered(self, model: str, ids: list[int], order: str | None) -> list[int]:
        records = [self.tables[model][i] for i in ids]
        for part in reversed([p.strip() for p in (order or "id asc").split(",") if p.strip()]):
            name, _, direction = part.partition(" ")
            records.sort(key=lambda r, n=name: (r.get(n) is None, r.get(n) or 0),
                         reverse=direction.strip().lower() == "desc")
        return [r["id"] for r in records]

    # -- the ORM methods -----------------------------------------------------
    def call(self, model: str, method: str, args: list, kwargs: dict) -> Any:
        """Run one ``execute_kw`` call as one transaction (rolled back on an error)."""
        public = {"search", "search_count", "read", "search_read", "create", "write",
                  "unlink", "fields_get", "action_confirm"}
        if method not in public:
            raise OdooException("builtins.AttributeError",
                                f"The method '{method}' does not exist on the model '{model}'")
        self.fields(model)
        mutating = method in ("create", "write", "unlink", "action_confirm")
        try:
            with self.transaction() if mutating else self.lock:
                if mutating:
                    self.tick()
                return getattr(self, method)(model, *args, **kwargs)
        except TypeError as exc:
            raise OdooException("builtins.TypeError", str(exc)) from None

    def search(self, model: str, domain: list | None = None, offset: int = 0,
               limit: int | None = None, order: str | None = None,
               context: dict | None = None) -> list[int]:
        domain = list(domain or [])
        try:
            predicate = compile_domain(domain)
        except DomainError as exc:
            raise OdooException("builtins.ValueError", str(exc)) from None
        spec = self.fields(model)
        for leaf in domain:
            if isinstance(leaf, list) and leaf and leaf[0] not in spec:
                raise OdooException("builtins.ValueError",
                                    f"Invalid field {model}.{leaf[0]} in leaf {leaf!r}")
        active_test = (context or {}).get("active_test", True) and "active" in spec and not any(
            isinstance(leaf, list) and leaf[:1] == ["active"] for leaf in domain)
        ids = [i for i, rec in self.tables[model].items()
               if (not active_test or rec.get("active")) and predicate(rec)]
        ids = self._ordered(model, ids, order)[offset or 0:]
        return ids[:limit] if limit else ids

    def search_count(self, model: str, domain: list | None = None,
                     context: dict | None = None) -> int:
        return len(self.search(model, domain, context=context))

    def read(self, model: str, ids: list[int], fields: list[str] | None = None,
             context: dict | None = None) -> list[dict[str, Any]]:
        table = self.tables[model]
        missing = [i for i in ids if i not in table]
        if missing:
            raise OdooException("odoo.exceptions.MissingError",
                                f"Record does not exist or has been deleted.\n"
                                f"(Record: {model}({missing[0]},), User: 2)")
        return [self._wire(model, table[i], fields) for i in ids]

    def search_read(self, model: str, domain: list | None = None,
                    fields: list[str] | None = None, offset: int = 0,
                    limit: int | None = None, order: str | None = None,
                    context: dict | None = None) -> list[dict[str, Any]]:
        return self.read(model, self.search(model, domain, offset, limit, order, context),
                         fields)

    def create(self, model: str, vals_list: Any, context: dict | None = None) -> Any:
        single = isinstance(vals_list, dict)
        ids = [self._create_one(model, vals) for vals in ([vals_list] if single
                                                          else vals_list)]
        return ids[0] if single else ids

    def write(self, model: str, ids: list[int], vals: dict[str, Any],
              context: dict | None = None) -> bool:
        self._check_vals(model, vals, creating=False)
        now = self.now()
        self.read(model, ids, ["id"])  # MissingError for unknown ids
        for record in (self.tables[model][i] for i in ids):
            self._apply(model, record, vals)
            record["write_date"] = now
            parent = _PARENT.get(model)
            if parent and record.get(parent):
                owner = {"order_id": "sale.order", "move_id": "account.move"}[parent]
                self._compute(owner, self.tables[owner][record[parent]])
        return True

    def unlink(self, model: str, ids: list[int], context: dict | None = None) -> bool:
        self.read(model, ids, ["id"])
        for other, fields in MODELS.items():   # many2one ondelete='restrict'
            refs = [f for f, spec in fields.items() if spec["type"] == "many2one"
                    and spec["relation"] == model and other != model]
            if any(rec.get(f) in ids for rec in self.tables[other].values() for f in refs):
                raise OdooException("odoo.exceptions.UserError", (
                    "The operation cannot be completed: another model requires the record "
                    f"being deleted. If possible, archive it instead.\n\nModel: {other}"))
        for i in ids:
            self.remove(model, i)
        return True

    def fields_get(self, model: str, allfields: list[str] | None = None,
                   attributes: list[str] | None = None, context: dict | None = None) -> dict:
        out = {}
        for name, spec in self.fields(model).items():
            if allfields and name not in allfields:
                continue
            info = {"type": spec["type"], "relation": spec["relation"] or False,
                    "required": spec["required"], "readonly": spec["computed"],
                    "string": name.replace("_", " ").title()}
            out[name] = {k: v for k, v in info.items() if not attributes or k in attributes}
        return out

    def action_confirm(self, model: str, ids: list[int], context: dict | None = None) -> bool:
        if model != "sale.order":
            raise OdooException("builtins.AttributeError",
                                f"The method 'action_confirm' does not exist on the model "
                                f"'{model}'")
        records = [self.tables[model][r["id"]] for r in self.read(model, ids, ["id"])]
        if any(r["state"] not in ("draft", "sent") for r in records):
            raise OdooException("odoo.exceptions.UserError",
                                "Some orders are not in a state requiring confirmation.")
        for record in records:
            if not record["order_line"]:
                raise OdooException("odoo.exceptions.UserError",
                                    f"There are no order lines on {record['name']}; add a "
                                    "product before confirming.")
        now = self.now()
        for record in records:
            record["state"], record["write_date"] = "sale", now
        return True

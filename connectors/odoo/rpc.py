"""Odoo's external API over JSON-RPC, on top of the shared HTTP client.

Every call is ``POST /jsonrpc`` with::

    {"jsonrpc": "2.0", "method": "call", "id": N,
     "params": {"service": "object", "method": "execute_kw",
                "args": [db, uid, password, model, method, args, kwargs]}}

``common.authenticate(db, login, password, {})`` gives the ``uid`` (or
``false``). Errors come back with HTTP 200 and an ``error`` member whose
``data.name`` is the Python exception class, e.g.
``odoo.exceptions.ValidationError``. This module sorts them:

* AccessDenied / AccessError / a missing database -> :class:`FatalError`
  (credentials or rights are wrong; retrying will not help);
* UserError / ValidationError / MissingError / ValueError -> :class:`OdooRecordError`
  (Odoo refused the data of this call; the writer turns it into a per-record
  failure, a read stops with Odoo's message), except ``Invalid field`` and
  ``Object x.y doesn't exist`` (an unknown model), which are configuration
  mistakes: :class:`ConfigError`, exit 2;
* serialization failures (two transactions touched the same rows) ->
  :class:`RetriableError`.

Transport failures (429, 5xx, cut bodies) are retried by the HTTP client.
Calls that are not idempotent (``create``) go through a client that does not
retry on its own: the writer re-checks what was created instead (see
:mod:`.target`).
"""

from __future__ import annotations

__all__ = ["OdooRpc", "OdooRecordError", "odoo_datetime", "to_wire", "error_from_body"]

import itertools
import json
import re
from collections.abc import Sequence
from typing import Any

from crm2erp.connectors.odoo.config import OdooConfig
from crm2erp.connectors.toolkit.timestamps import utc_instant
from crm2erp.connectors.toolkit.writer import json_default
from crm2erp.errors import ConfigError, FatalError, RetriableError
from crm2erp.http import HttpClient, build_auth, decode_json
from crm2erp.redact import redact, register_secret

ODOO_DATETIME = "%Y-%m-%d %H:%M:%S"
_FATAL = ("AccessDenied", "AccessError", "OperationalError", "KeyError")
_RECORD = ("UserError", "ValidationError", "MissingError", "ValueError", "IntegrityError",
           "RedirectWarning", "CacheMiss")
_RETRY = ("SerializationFailure", "LockNotAvailable", "TransactionRollbackError")
# odoo/service/model.py: raise UserError(_("Object %s doesn't exist", obj))
_UNKNOWN_MODEL = re.compile(r"^Object (\S+) doesn't exist")


class OdooRecordError(FatalError):
    """Odoo refused the data of one call (``UserError``, ``ValidationError``...).

    The writer turns it into a failure of the record(s) at fault; anywhere else
    (a read) it stops the run like any :class:`FatalError`, with Odoo's message.
    """

    def __init__(self, name: str, message: str, where: str = "call"):
        super().__init__(f"Odoo refused {where}: {name}: {message}")
        self.name, self.message = name, message


def odoo_datetime(value: Any) -> str:
    """An ISO-8601 timestamp (or datetime) as Odoo's naive UTC ``YYYY-MM-DD HH:MM:SS``.

    Fractions are dropped (rounded down), which keeps an inclusive ``>=`` inclusive.
    """
    return utc_instant(value, "Odoo cursor value").replace(tzinfo=None).strftime(ODOO_DATETIME)


#: JSON encoder default: Decimal -> float, datetimes as Odoo writes them (UTC, naive)
to_wire = json_default("Odoo", moment=odoo_datetime)


def error_from_body(error: dict[str, Any], where: str) -> Exception:
    """The exception for a JSON-RPC ``error`` member (see the module docstring)."""
    data = error.get("data") if isinstance(error.get("data"), dict) else {}
    name = str(data.get("name") or error.get("message") or "unknown")
    message = str(data.get("message") or error.get("message") or "no message")
    short = name.rsplit(".", 1)[-1]
    if any(s in name for s in _RETRY):
        return RetriableError(f"Odoo {where}: {short}: {message} (concurrent update; "
                              "the run can be retried)")
    if short in _FATAL or "database" in message.lower() and "not exist" in message.lower():
        return FatalError(redact(
            f"Odoo {where} was refused: {short}: {message}. Check the connection's url, "
            "database, username and password/API key, and the access rights of that user."))
    if short == "ValueError" and message.startswith("Invalid field"):
        return ConfigError(f"Odoo {where}: {message}. Fix the field names in the stream "
                           "config or the outbound mapping.")
    unknown_model = _UNKNOWN_MODEL.match(message)
    if unknown_model:
        return ConfigError(f"Odoo {where}: model {unknown_model[1]!r} does not exist in this "
                           "database. Fix the stream's model (technical name, e.g. "
                           "res.partner) or install the Odoo app that provides it.")
    if short in _RECORD:
        return OdooRecordError(short, message, where)
    return FatalError(f"Odoo {where} failed: {short}: {message}")


class OdooRpc:
    """Authenticated ``execute_kw`` calls; ``client.stats`` counts every request."""

    def __init__(self, config: OdooConfig, **client_options: Any):
        self.config = config
        self.password = config.password.get_secret_value()
        register_secret(self.password)
        self.client = HttpClient(config.http_settings(), base_url=config.url,
                                 auth=build_auth(config.auth), name="odoo", **client_options)
        self.once = self.client.single_attempt()
        self.uid: int | None = None
        self._ids = itertools.count(1)
        self._types: dict[str, dict[str, dict[str, Any]]] = {}

    def call(self, service: str, method: str, *args: Any, idempotent: bool = True) -> Any:
        payload = {"jsonrpc": "2.0", "method": "call", "id": next(self._ids),
                   "params": {"service": service, "method": method, "args": list(args)}}
        client = self.client if idempotent else self.once
        data = json.dumps(payload, default=to_wire).encode()
        resp = client.request("POST", "/jsonrpc", data=data,
                              headers={"Content-Type": "application/json"})
        if resp.status_code >= 400:
            raise FatalError(f"Odoo: POST /jsonrpc ({service}.{method}) failed with HTTP "
                             f"{resp.status_code}; check the url (no /jsonrpc suffix, no /web)")
        body = decode_json(resp)
        if not isinstance(body, dict):
            raise FatalError(f"Odoo: /jsonrpc answered {type(body).__name__}, not a JSON-RPC "
                             "object; is the url an Odoo server?")
        if body.get("error"):
            raise error_from_body(body["error"], f"{service}.{method}")
        return body.get("result")

    def authenticate(self) -> int:
        uid = self.call("common", "authenticate", self.config.database, self.config.username,
                        self.password, {})
        if not uid:
            raise FatalError(f"Odoo refused the login of {self.config.username!r} to database "
                             f"{self.config.database!r}; check username, password or API key "
                             "and the database name")
        self.uid = int(uid)
        return self.uid

    def execute_kw(self, model: str, method: str, args: list[Any],
                   kwargs: dict[str, Any] | None = None, *, idempotent: bool = True) -> Any:
        uid = self.uid if self.uid is not None else self.authenticate()
        kwargs = dict(kwargs or {})
        context = {**self.config.context, **kwargs.pop("context", {})}
        if context:
            kwargs["context"] = context
        return self.call("object", "execute_kw", self.config.database, uid, self.password,
                         model, method, args, kwargs, idempotent=idempotent)

    def field_types(self, model: str) -> dict[str, dict[str, Any]]:
        """``fields_get`` of ``model`` (type and relation per field), cached per connection."""
        if model not in self._types:
            self._types[model] = self.execute_kw(model, "fields_get", [],
                                                 {"attributes": ["type", "relation"]}) or {}
        return self._types[model]

    def records_by(self, model: str, field: str, values: Sequence[Any], fields: list[str],
                   **kwargs: Any) -> dict[str, dict[str, Any]]:
        """The records of ``model`` whose ``field`` is one of ``values`` (archived ones too),
        by that field's value as text; the first one ``search_read`` answers (in the
        ``order`` of ``kwargs``) where several share a value. No call for no values."""
        found: dict[str, dict[str, Any]] = {}
        if values:
            for rec in self.execute_kw(model, "search_read", [[[field, "in", list(values)]]],
                                       {"fields": fields, **kwargs,
                                        "context": {"active_test": False}}) or []:
                found.setdefault(str(rec[field]), rec)
        return found

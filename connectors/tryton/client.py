"""JSON-RPC client for trytond, on the shared HTTP toolkit (:mod:`crm2erp.http`).

Tryton speaks JSON-RPC at ``POST <url>/<database>/rpc/`` with bodies
``{"id": n, "method": "model.party.party.search_read", "params": [..., context]}``.
Three things differ from plain JSON and live here:

* values that JSON cannot carry are objects tagged with ``__class__``
  (``Decimal``, ``date``, ``datetime``, ``time``, ``timedelta``, ``bytes``);
  money therefore stays exact both ways;
* login is ``common.db.login(username, {"password": ...}, language)``, which
  answers ``[user_id, session, ...]``; later calls send
  ``Authorization: Session base64(username:user_id:session)``. An expired
  session answers 401 and the HTTP client logs in again once;
* a call that changes records (``idempotent=False``: creates, writes, buttons)
  is sent once (:meth:`HttpClient.single_attempt`): sent again after its answer
  was lost, it could create a record twice or press a button no longer there;
  the writers recover by looking at what Tryton holds (toolkit ``creates``);
* the server's exceptions come back in the ``error`` member of a 200
  response: ``UserError``/``UserWarning`` are a record's fault
  (:class:`TrytonUserError`, a RecordError), ``ConcurrencyException`` is
  worth a retry, anything else is a server-side failure (:class:`TrytonServerError`).
"""

from __future__ import annotations

__all__ = ["TrytonClient", "TrytonUserError", "TrytonServerError", "dumps", "loads"]

import base64
import datetime as dt
import itertools
import json
import logging
from collections.abc import Sequence
from decimal import Decimal
from functools import cached_property
from typing import Any

from crm2erp.connectors.tryton.config import TrytonConfig
from crm2erp.errors import FatalError, RecordError, RetriableError
from crm2erp.http import HttpClient
from crm2erp.http.auth import TokenAuth
from crm2erp.redact import redact, register_secret

log = logging.getLogger(__name__)


class TrytonUserError(RecordError):
    """Tryton refused a call with a UserError or UserWarning (validation, state, access)."""

    def __init__(self, message: str, *, kind: str = "UserError", name: str | None = None):
        super().__init__(message, stage="write")
        self.kind = kind
        #: a UserWarning's key: a ``res.user.warning`` of this name skips it next time
        self.name = name


class TrytonServerError(RecordError):
    """The server raised an unexpected exception (a bug, or values of the wrong type)."""

    def __init__(self, message: str):
        super().__init__(message, stage="write")


# -- the __class__ encoding ---------------------------------------------------

#: ``__class__`` name -> (type, the fields that carry it); datetime before date (a subclass)
_PARTS: dict[str, tuple[type, tuple[str, ...]]] = {
    "datetime": (dt.datetime, ("year", "month", "day", "hour", "minute", "second",
                               "microsecond")),
    "date": (dt.date, ("year", "month", "day")),
    "time": (dt.time, ("hour", "minute", "second", "microsecond")),
}


def _encode(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return {"__class__": "Decimal", "decimal": str(obj)}
    for name, (kind, parts) in _PARTS.items():
        if isinstance(obj, kind):
            return {"__class__": name, **{part: getattr(obj, part) for part in parts}}
    if isinstance(obj, dt.timedelta):
        return {"__class__": "timedelta", "seconds": obj.total_seconds()}
    if isinstance(obj, bytes | bytearray):
        return {"__class__": "bytes", "base64": base64.b64encode(obj).decode("ascii")}
    if isinstance(obj, set | frozenset):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} cannot be sent to Tryton")


def _decode(obj: dict) -> Any:
    name = obj.get("__class__")
    if name in _PARTS:
        kind, parts = _PARTS[name]
        return kind(*(obj[part] for part in parts))
    if name == "Decimal":
        return Decimal(obj["decimal"])
    if name == "timedelta":
        return dt.timedelta(seconds=obj["seconds"])
    if name == "bytes":
        return base64.b64decode(obj["base64"])
    return obj


def dumps(value: Any) -> str:
    """JSON text in Tryton's encoding (``__class__`` objects for Decimal, dates, bytes)."""
    return json.dumps(value, default=_encode, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    return json.loads(text, object_hook=_decode)


# -- auth ------------------------------------------------------------------

class TrytonSessionAuth(TokenAuth):
    """``common.db.login`` once, then the ``Session`` header; refreshed once on a 401."""

    def __init__(self, config: TrytonConfig):
        super().__init__("Authorization", "Session ")
        self.config = config
        self.user_id: int | None = None
        register_secret(config.password.get_secret_value())

    def fetch(self, client: HttpClient) -> tuple[str, float | None]:
        cfg = self.config
        body = dumps({"id": 0, "method": "common.db.login",
                      "params": [cfg.username, {"password": cfg.password.get_secret_value()},
                                 cfg.language]})
        resp = client.request("POST", cfg.rpc_url, data=body, authenticate=False,
                              headers={"Content-Type": "application/json"})
        if resp.status_code in (401, 403):
            raise FatalError(f"Tryton login to database {cfg.database!r} at {cfg.url} as "
                             f"{cfg.username!r} was refused (HTTP {resp.status_code}); check "
                             "username and password, and that the database name is right")
        answer = _answer(resp, "common.db.login")
        if isinstance(answer, dict) and "error" in answer:
            raise FatalError(redact(f"Tryton login as {cfg.username!r} failed: "
                                    f"{_error_text(answer['error'])}"))
        result = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(result, list) or len(result) < 2:
            raise FatalError(f"Tryton login as {cfg.username!r} returned no session "
                             f"({str(result)[:100]}); check username and password")
        self.user_id, session = int(result[0]), str(result[1])
        register_secret(session)
        raw = f"{cfg.username}:{self.user_id}:{session}".encode()
        token = base64.b64encode(raw).decode("ascii")
        # Tryton expires idle sessions; a 401 makes the client log in again.
        return token, None


def _answer(resp, method: str) -> Any:
    if resp.status_code == 404:
        raise FatalError(f"Tryton answered 404 for {resp.url}; check url and database name")
    if resp.status_code >= 400:
        raise FatalError(redact(f"Tryton {method} failed with HTTP {resp.status_code}: "
                                f"{resp.text[:300].strip()}"))
    try:
        return loads(resp.content)
    except ValueError as exc:
        raise RetriableError(f"Tryton {method}: unreadable JSON answer ({exc})") from None


def _error_text(error: Any) -> str:
    """The user-facing text of a JSON-RPC ``error`` member."""
    if isinstance(error, list) and len(error) == 2 and isinstance(error[1], list | tuple):
        parts = [str(p) for p in error[1][:2] if p and isinstance(p, str)]
        if error[0] == "UserWarning":   # (name, message, description)
            parts = [str(p) for p in error[1][1:3] if p]
        return " - ".join(parts) or str(error[0])
    if isinstance(error, list) and error:
        return str(error[0])
    return str(error)


# -- the client ----------------------------------------------------------------

class TrytonClient:
    """Calls Tryton RPC methods; ``context`` (company, language...) goes last."""

    def __init__(self, config: TrytonConfig, **client_options: Any):
        self.config = config
        self.auth = TrytonSessionAuth(config)
        self.http = HttpClient(config.http_settings(), auth=self.auth, name="tryton",
                               **client_options)
        self.once = self.http.single_attempt()   # shares the session and the login
        self._ids = itertools.count(1)
        self._models: dict[str, bool] = {}

    @cached_property
    def context(self) -> dict[str, Any]:
        """The user's preferences (company, language...) plus the configured context
        (asked once)."""
        prefs = self.call("model.res.user.get_preferences", True, context={})
        ctx = {k: v for k, v in (prefs or {}).items()
               if k in ("company", "companies", "language", "language_direction",
                        "groups", "employee", "employees")}
        if self.config.company is not None:
            ctx["company"] = self.config.company
        return {**ctx, **self.config.context}

    def call(self, method: str, *params: Any, context: dict[str, Any] | None = None,
             idempotent: bool = True) -> Any:
        """Call ``method`` with ``params`` and the context as the last parameter;
        a call that is not ``idempotent`` is sent once (see the module docstring)."""
        ctx = self.context if context is None else context
        body = dumps({"id": next(self._ids), "method": method, "params": [*params, ctx]})
        client = self.http if idempotent else self.once
        resp = client.request("POST", self.config.rpc_url, data=body,
                                 headers={"Content-Type": "application/json"})
        answer = _answer(resp, method)
        if not isinstance(answer, dict):
            raise TrytonServerError(f"Tryton {method}: unexpected answer {str(answer)[:100]}")
        if "error" in answer and answer["error"] is not None:
            raise _error(method, answer["error"])
        return answer.get("result")

    def model(self, model: str, method: str, *params: Any,
              context: dict[str, Any] | None = None, idempotent: bool = True) -> Any:
        """``call("model.<model>.<method>", ...)`` with the context merged over the default."""
        ctx = {**self.context, **context} if context else None
        return self.call(f"model.{model}.{method}", *params, context=ctx, idempotent=idempotent)

    def search_read(self, model: str, domain: list, fields: Sequence[str], *,
                    limit: int | None = None, order: list | None = None,
                    context: dict[str, Any] | None = None) -> list[dict]:
        """The ``fields`` of the records of ``model`` matching ``domain`` (from the first)."""
        return self.model(model, "search_read", domain, 0, limit, order, list(fields),
                          context=context)

    def read(self, model: str, ids: Sequence[int], fields: Sequence[str],
             context: dict[str, Any] | None = None) -> list[dict]:
        """The ``fields`` of the records ``ids`` (no call for no ids)."""
        return self.model(model, "read", list(ids), list(fields), context=context) if ids else []

    def has_model(self, name: str) -> bool:
        """Whether the database has ``name`` (its module is activated); asked once."""
        if name not in self._models:
            self._models[name] = bool(self.model("ir.model", "search_count",
                                                 [("name", "=", name)]))
        return self._models[name]

    def wizard(self, name: str, state: str, data: dict[str, Any],
               context: dict[str, Any] | None = None) -> Any:
        """Run wizard ``name`` from ``state`` with the views' ``data`` in one session
        (``wizard.<name>.create``, ``.execute``, ``.delete``), as the Tryton client does."""
        ctx = {**self.context, **context} if context else None
        session, _, _ = self.call(f"wizard.{name}.create", context=ctx)
        try:
            return self.call(f"wizard.{name}.execute", session, data, state, context=ctx)
        finally:
            self.call(f"wizard.{name}.delete", session, context=ctx)

    def skip_warning(self, name: str) -> None:
        """Answer the UserWarning ``name`` with "yes", once (a ``res.user.warning``)."""
        self.model("res.user.warning", "create",
                   [{"user": self.auth.user_id, "name": name, "always": False}])

    def close(self) -> None:
        self.http.close()


def _error(method: str, error: Any) -> Exception:
    kind = error[0] if isinstance(error, list) and error else None
    text = _error_text(error)
    if kind in ("UserError", "UserWarning"):
        name = (str(error[1][0]) if kind == "UserWarning" and isinstance(error[1], list | tuple)
                and error[1] else None)
        return TrytonUserError(f"Tryton refused ({kind}): {text}", kind=kind, name=name)
    if kind == "ConcurrencyException":
        return RetriableError(f"Tryton {method}: record modified concurrently ({text})")
    if kind == "LoginException":
        return FatalError(f"Tryton {method}: login required ({text}); check the credentials")
    log.debug("Tryton %s server error: %s", method, error)
    return TrytonServerError(f"Tryton {method} raised: {text}")

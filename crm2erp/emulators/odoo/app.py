"""An Odoo JSON-RPC emulator (WSGI), for tests, benchmarks and demos.

Served with :func:`crm2erp.emulators.kernel.server.serve_wsgi` or from the command line::

    python -m crm2erp.emulators.odoo.app --port 8069 --companies 200

It answers ``POST /jsonrpc`` like Odoo 17: ``common.version``,
``common.authenticate``/``login``, ``db.list`` and ``object.execute_kw`` for
``search``, ``search_read``, ``read``, ``search_count``, ``create``,
``write``, ``unlink``, ``fields_get`` and ``action_confirm`` on the models in
:mod:`.fakedb` (seeded by :mod:`.seed`). Errors are JSON-RPC error objects
with HTTP 200, as Odoo sends them; faults (429 with ``Retry-After``, 500,
503, cut bodies) are HTTP-level, as a proxy in front of Odoo produces them.

Test control (the conformance suite's ``EmulatorControl``): ``count``,
``touch``, ``delete_records`` (archives, which is how Odoo users delete
referenced records), ``sample_rows``, ``invalid_row``, ``fail_next``,
``exhaust_limit`` (the database's API access is cut: every call answers
AccessDenied) and ``expire_tokens`` (a no-op: JSON-RPC sends the password or
API key with every call, there is no token to expire).
"""

from __future__ import annotations

__all__ = ["OdooEmulator", "make_app", "main", "DATABASE", "USERNAME", "PASSWORD"]

import json
import logging
import random
import threading
from typing import Any

from crm2erp.connectors.odoo.config import DEFAULT_STREAMS, OdooStreamConfig
from crm2erp.emulators.kernel.emulation import (
    FaultInjection,
    Reply,
    read_body,
    respond,
    status_line,
)
from crm2erp.emulators.kernel.server import count, run_emulator
from crm2erp.emulators.odoo.fakedb import FakeDb, OdooException
from crm2erp.emulators.odoo.seed import BASE as SEED_START
from crm2erp.emulators.odoo.seed import seed_database

log = logging.getLogger(__name__)
DATABASE, USERNAME, PASSWORD = "odoo", "admin", "emulator-api-key"
UID = 2


def _rpc_error(exc: OdooException) -> dict[str, Any]:
    return {"code": 200, "message": "Odoo Server Error",
            "data": {"name": exc.name, "message": exc.message, "arguments": [exc.message],
                     "context": {}, "debug": f"Traceback (most recent call last):\n"
                                             f"{exc.name}: {exc.message}"}}


class OdooEmulator(FaultInjection):
    """The WSGI app; its public methods are the test-control API."""

    def __init__(self, *, seed: int = 42, companies: int = 120, persons_per_company: int = 2,
                 products: int = 12, same_stamp: int = 7, fault_rate: float = 0.0,
                 fault_kinds: tuple = (429, 503, 500, "truncate"), retry_after: int = 1,
                 streams: dict[str, dict[str, Any]] | None = None):
        self.db = FakeDb(seed=seed, start=SEED_START)
        seed_database(self.db, companies=companies,
                      persons_per_company=persons_per_company, products=products,
                      same_stamp=same_stamp)
        self.streams = {name: OdooStreamConfig.model_validate(spec)
                        for name, spec in (streams or DEFAULT_STREAMS).items()}
        self.base_url = "http://127.0.0.1"
        self.api_blocked = False
        self.calls: list[tuple[str, str]] = []  # (model, method) of every execute_kw
        self._lock = threading.Lock()
        self.init_faults(random.Random(seed + 1), fault_rate=fault_rate, fault_kinds=fault_kinds,
                         retry_after=retry_after)
        self._cut: list[str] = []
        self._new = 0

    # -- control API (tests) --------------------------------------------
    def _stream(self, stream: str) -> OdooStreamConfig:
        return self.streams[stream]

    def count(self, stream: str) -> int:
        s = self._stream(stream)
        return self.db.search_count(s.model, s.domain,
                                    {"active_test": s.archived_as_deleted})

    def records(self, stream: str) -> list[dict[str, Any]]:
        """The stream's records as ``search_read`` returns them (wire format)."""
        s = self._stream(stream)
        return self.db.search_read(s.model, s.domain, s.fields, order="id asc",
                                   context={"active_test": s.archived_as_deleted})

    def cut_reply_of(self, method: str) -> None:
        """Cut the reply of the next ``execute_kw`` of ``method`` *after* it ran.

        The client sees a broken response although Odoo committed the call: the
        case that makes blind retries of ``create`` duplicate records.
        """
        with self._lock:
            self._cut.append(method)

    def touch(self, stream: str, n: int) -> list[str]:
        s = self._stream(stream)
        ids = self.db.search(s.model, s.domain, limit=n, order="id asc")
        with self.db.lock:
            self.db.tick()   # one mass update: one write_date
            field = "comment" if s.model == "res.partner" else "name"
            for record_id in ids:
                value = self.db.tables[s.model][record_id].get(field) or ""
                self.db.write(s.model, [record_id], {field: value + " "})
        return [str(i) for i in ids]

    def delete_records(self, stream: str, n: int) -> list[str]:
        s = self._stream(stream)
        ids = self.db.search(s.model, s.domain, limit=n, order="id desc")
        with self.db.lock:
            self.db.tick()
            self.db.write(s.model, ids, {"active": False})
        return [str(i) for i in ids]

    def sample_rows(self, stream: str, n: int) -> list[dict[str, Any]]:
        s = self._stream(stream)
        with self._lock:
            start, self._new = self._new, self._new + n
        rows = []
        for k in range(start + 1, start + n + 1):
            if s.model == "res.partner":
                rows.append({"ref": f"CRM-{k:06d}", "name": f"Neukunde {k} GmbH",
                             "email": f"kontakt{k}@neukunde{k}.example", "street": "Ufer 1",
                             "zip": "10115", "city": "Berlin", "country_code": "DE"})
            elif s.model == "sale.order":
                partner = self.db.search("res.partner", [["is_company", "=", True]], limit=1)[0]
                rows.append({"origin": f"CRM-OPP-{k:06d}", "partner_id": partner,
                             "order_line": [{"product_code": "SKU-0001",
                                             "product_uom_qty": 2, "price_unit": 289.0}]})
            elif s.model == "product.product":
                rows.append({"default_code": f"NEW-{k:04d}", "name": f"Neues Produkt {k}",
                             "list_price": 10.0 * k})
            else:
                raise ValueError(f"stream {stream!r} ({s.model}) is not writable here")
        return rows

    def invalid_row(self, stream: str) -> dict[str, Any]:
        row = self.sample_rows(stream, 1)[0]
        for name in ("name", "partner_id"):
            if name in row:
                row.pop(name)
                break
        return row

    def exhaust_limit(self) -> None:
        self.api_blocked = True

    def expire_tokens(self) -> None:
        """Nothing to expire: Odoo's JSON-RPC API authenticates every call."""

    # -- WSGI ------------------------------------------------------------
    def _refusal(self, status: int, retry_after: int | None) -> Reply:
        extra = {"Retry-After": self.retry_after_header(retry_after)} \
            if status in (429, 503) else {}
        return Reply(status, {"error": status_line(status, upper=True)}, extra)

    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        raw = read_body(environ)
        headers = {"Content-Type": "application/json"}
        truncate = False
        status, payload = 200, None
        self.count_request()
        if path != "/jsonrpc":
            status, payload = 404, {"error": "not found"}
        elif method != "POST":
            status, payload = 405, {"error": "method not allowed"}
        else:
            try:
                truncate = self.take_fault(path, self._refusal)
            except Reply as reply:
                status, payload = reply.status, reply.body
                headers.update(reply.headers)
        if payload is None:
            payload = self._jsonrpc(raw)
            truncate = truncate or self._cut_now(raw)
        return respond(start_response, status, payload, headers, truncate=truncate, upper=True)

    def _cut_now(self, raw: bytes) -> bool:
        with self._lock:
            if not self._cut:
                return False
            try:
                args = json.loads(raw)["params"]["args"]
            except (ValueError, KeyError, TypeError):
                return False
            if len(args) > 4 and args[4] == self._cut[0]:
                self._cut.pop(0)
                return True
        return False

    def _jsonrpc(self, raw: bytes) -> dict[str, Any]:
        try:
            request = json.loads(raw or b"{}")
            params = request["params"]
            service, method, args = params["service"], params["method"], params.get("args", [])
        except (ValueError, KeyError, TypeError):
            return {"jsonrpc": "2.0", "id": None,
                    "error": {"code": -32600, "message": "Invalid Request"}}
        try:
            result = self._dispatch(service, method, list(args))
        except OdooException as exc:
            return {"jsonrpc": "2.0", "id": request.get("id"), "error": _rpc_error(exc)}
        return {"jsonrpc": "2.0", "id": request.get("id"), "result": result}

    def _dispatch(self, service: str, method: str, args: list[Any]) -> Any:
        if service == "common" and method == "version":
            return {"server_version": "17.0", "server_version_info": [17, 0, 0, "final", 0, ""],
                    "server_serie": "17.0", "protocol_version": 1}
        if service == "common" and method in ("authenticate", "login"):
            db, login, password = (args + [None] * 3)[:3]
            self._database(db)
            if self.api_blocked:
                raise self._blocked()
            return UID if (login, password) == (USERNAME, PASSWORD) else False
        if service == "db" and method == "list":
            return [DATABASE]
        if service == "object" and method in ("execute_kw", "execute"):
            if len(args) < 5:
                raise OdooException("builtins.TypeError", "execute_kw() missing arguments")
            db, uid, password, model, name = args[:5]
            self._database(db)
            if uid != UID or password != PASSWORD:
                raise OdooException("odoo.exceptions.AccessDenied", "Access Denied")
            if self.api_blocked:
                raise self._blocked()
            if method == "execute_kw":
                call_args = args[5] if len(args) > 5 else []
                kwargs = args[6] if len(args) > 6 else {}
            else:
                call_args, kwargs = args[5:], {}
            with self._lock:
                self.calls.append((model, name))
            return self.db.call(model, name, list(call_args or []), dict(kwargs or {}))
        raise OdooException("builtins.Exception",
                            f"No such method {method!r} on service {service!r}")

    @staticmethod
    def _database(name: Any) -> None:
        if name != DATABASE:
            raise OdooException("psycopg2.OperationalError",
                                f'connection to server failed: FATAL:  database "{name}" '
                                "does not exist")

    @staticmethod
    def _blocked() -> OdooException:
        return OdooException("odoo.exceptions.AccessDenied",
                             "Access Denied: API access to this database is disabled "
                             "(subscription expired or request quota used up)")


def make_app(seed: int = 42, companies: int = 120, **options: Any) -> OdooEmulator:
    """Build an emulator app (a WSGI callable with the test-control methods)."""
    return OdooEmulator(seed=seed, companies=companies, **options)


def main(argv: list[str] | None = None) -> int:
    """Run the emulator on a port until interrupted."""
    return run_emulator(argv, "crm2erp.emulators.odoo.app",
                        "Run the Odoo JSON-RPC emulator.", 8069, make_app,
                        f"Odoo emulator on {{url}} (database={DATABASE}, username={USERNAME}, "
                        f"password={PASSWORD})", {"companies": (count, 120)})


if __name__ == "__main__":
    raise SystemExit(main())

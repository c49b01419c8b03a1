"""Serve a WSGI app on a loopback port in a background thread.

Every API emulator (Salesforce, HubSpot, ERP REST...) is a plain WSGI app, so
tests, benchmarks and ``crm2erp emulator run`` all serve it the same way:
a real HTTP/1.1 server on 127.0.0.1 that a connector talks to over real
sockets, keeping connections alive between requests as the vendors' servers
do, so a connector's session (``requests``/``httpx``) really reuses them.
The server is cheroot's threaded WSGI server (a pool of worker threads; idle
keep-alive connections wait in a selector, not in a thread).
:func:`run_emulator` is every emulator's ``main(argv)``
(``python -m crm2erp.emulators.X.app``, ``crm2erp emulator run X``).
"""

from __future__ import annotations

__all__ = ["serve_wsgi", "serving", "EmulatorServer", "make_server", "run_emulator",
           "emulator_parser", "serve_until_interrupted", "emulator_process"]

import argparse
import contextlib
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from cheroot import wsgi

log = logging.getLogger(__name__)


def _wsgiref_path(app: Callable) -> Callable:
    """``app`` seeing ``PATH_INFO`` fully unquoted (``%2F`` too), as stdlib ``wsgiref``
    gives it and the emulators were written for (cheroot keeps ``%2F`` quoted)."""
    def wrapped(environ: dict[str, Any], start_response: Callable):
        raw_path = urlsplit(environ.get("REQUEST_URI", "")).path
        if raw_path:
            environ["PATH_INFO"] = unquote(raw_path, "iso-8859-1")
        return app(environ, start_response)
    return wrapped


class EmulatorServer(wsgi.Server):
    """A threaded HTTP/1.1 WSGI server with keep-alive, bound when created.

    It has the surface tests used of the stdlib server (``server_port``,
    ``serve_forever``, ``shutdown``, ``server_close``) and counts the TCP
    connections it accepted (:attr:`accepted_connections`), so a test can see
    that a client reused one connection.
    """

    expiration_interval = 0.05     # how often the idle loop looks up: stop() waits this long
    keep_alive_conn_limit = 64     # idle keep-alive connections held before closing new ones
    threads = 10                   # requests served at the same time

    def __init__(self, app: Callable, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), _wsgiref_path(app), numthreads=self.threads,
                         server_name=host, request_queue_size=64, shutdown_timeout=5)
        self.stats["Enabled"] = True   # counts accepts (cheroot's own statistics)
        self.prepare()                 # binds now: port 0 becomes a free port

    @property
    def server_port(self) -> int:
        return self.bind_addr[1]

    @property
    def url(self) -> str:
        """The base URL, no trailing slash: ``http://127.0.0.1:PORT``."""
        return f"http://{self.bind_addr[0]}:{self.server_port}"

    @property
    def accepted_connections(self) -> int:
        """TCP connections accepted since the server started."""
        return self.stats["Accepts"]

    def serve_forever(self, poll_interval: float | None = None) -> None:
        """Serve until :meth:`shutdown` (``poll_interval`` is :attr:`expiration_interval`)."""
        self.serve()

    def shutdown(self) -> None:
        """Stop serving, close every connection and end the worker threads."""
        self.stop()
        # cheroot registers every server's statistics globally: drop them, or each
        # server (and the emulator app with its records) would live until exit
        logging.statistics.pop(f"Cheroot HTTPServer {id(self)}", None)

    server_close = shutdown

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        """cheroot's errors (an app that raised, a client that hung up) go to :mod:`logging`."""
        log.log(level, "%s", msg, exc_info=traceback)


def make_server(app: Callable, host: str = "127.0.0.1", port: int = 0) -> EmulatorServer:
    """``app`` bound to ``host:port`` (``0``: a free port), not serving yet."""
    return EmulatorServer(app, host, port)


@contextlib.contextmanager
def serving(app: Callable, host: str = "127.0.0.1", port: int = 0) -> Iterator[EmulatorServer]:
    """Run ``app`` until the ``with`` block ends; yields the running server
    (``url``, ``accepted_connections``). :func:`serve_wsgi` yields just its URL."""
    server = make_server(app, host, port)
    if hasattr(app, "base_url"):
        app.base_url = server.url
    thread = threading.Thread(target=server.serve_forever, name=f"wsgi-{server.server_port}",
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=5)


@contextlib.contextmanager
def serve_wsgi(app: Callable, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` until the ``with`` block ends; yields its base URL (no trailing slash).

    ``port=0`` picks a free port. If the app has a ``base_url`` attribute it is
    set, so the emulator can build absolute URLs (``instance_url``) itself.
    """
    with serving(app, host, port) as server:
        yield server.url


def _number(kind, low: float, high: float | None, what: str) -> Callable[[str], Any]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value
    parse.__name__ = what
    return parse


# argparse types of the emulators' options: a bad value is a usage error (exit 2)
count = _number(int, 1, None, "a whole number of at least 1")
limit = _number(int, 0, None, "a whole number of at least 0")
rate = _number(float, 0.0, 1.0, "a fraction between 0 and 1")
port = _number(int, 0, 65535, "a TCP port (0-65535)")


def emulator_parser(prog: str, description: str, default_port: int, *, seed: bool = True,
                    fault_rate: bool = True) -> argparse.ArgumentParser:
    """The command line every emulator shares: ``--host``, ``--port``, and unless
    turned off ``--seed`` (42) and ``--fault-rate`` (0.0); the emulator adds its own."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port, default=default_port)
    if seed:
        parser.add_argument("--seed", type=limit, default=42)
    if fault_rate:
        parser.add_argument("--fault-rate", type=rate, default=0.0)
    return parser


def serve_until_interrupted(app: Callable, host: str, port: int, banner: str) -> int:
    """Serve ``app`` on ``host:port`` until Ctrl-C; returns the exit code (0).

    Sets ``app.base_url`` (the emulator builds absolute URLs with it) and logs
    ``banner`` with ``{url}`` replaced by that URL, so the user sees where the
    emulator listens and which credentials it accepts.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = make_server(app, host, port)
    base_url = server.url
    if hasattr(app, "base_url"):
        app.base_url = base_url
    # printed, not logged: the crm2erp CLI logs warnings only, and the user needs these
    print(banner.format(url=base_url), file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def run_emulator(argv: list[str] | None, module: str, description: str, default_port: int,
                 make_app: Callable[..., Callable], banner: str,
                 options: dict[str, tuple[Callable[[str], Any], Any]] | None = None, *,
                 seed: bool = True, fault_rate: bool = True) -> int:
    """An emulator's ``main(argv)``: parse the command line, build the app, serve it.

    The command line is :func:`emulator_parser`'s plus ``options``, each
    ``name: (type, default)`` (``"page_size"`` is ``--page-size``); every option
    but ``--host`` and ``--port`` is passed to ``make_app`` by name. ``banner`` is
    logged with ``{url}`` filled in (see :func:`serve_until_interrupted`).
    """
    parser = emulator_parser(f"python -m {module}", description, default_port, seed=seed,
                             fault_rate=fault_rate)
    for name, (kind, default) in (options or {}).items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=default)
    settings = vars(parser.parse_args(argv))
    host, port = settings.pop("host"), settings.pop("port")
    return serve_until_interrupted(make_app(**settings), host, port, banner)


@contextlib.contextmanager
def emulator_process(module: str, *args: str, timeout: float = 30.0) -> Iterator[str]:
    """Run ``python -m module --port P *args`` as a program, as a user would, until the
    ``with`` block ends; yields its base URL once the port accepts connections."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", module, "--port", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{module} exited with {proc.returncode} before listening")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{module} did not listen on port {port} "
                                       f"within {timeout}s") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)

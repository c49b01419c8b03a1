"""Serve a WSGI app on a loopback port in a background thread.

Every API emulator (Salesforce, HubSpot, ERP REST...) is a plain WSGI app, so
tests, benchmarks and ``crm2erp emulator run`` all serve it the same way:
a real HTTP server on 127.0.0.1 that a connector talks to over real sockets.
:func:`emulator_parser` and :func:`serve_until_interrupted` are the common part
of every emulator's ``main(argv)`` (``python -m crm2erp.connectors.X.emulator``).
"""

from __future__ import annotations

__all__ = ["serve_wsgi", "QuietHandler", "ThreadingWSGIServer", "make_server",
           "emulator_parser", "serve_until_interrupted", "emulator_process"]

import argparse
import contextlib
import logging
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.simple_server import make_server as _make_server

log = logging.getLogger(__name__)


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """One thread per connection, so a slow response does not block the others."""

    daemon_threads = True
    allow_reuse_address = True


class QuietHandler(WSGIRequestHandler):
    """Access log through :mod:`logging` (debug) instead of stderr."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s - %s", self.address_string(), format % args)


def make_server(app: Callable, host: str = "127.0.0.1", port: int = 0) -> ThreadingWSGIServer:
    return _make_server(host, port, app, server_class=ThreadingWSGIServer,
                        handler_class=QuietHandler)


@contextlib.contextmanager
def serve_wsgi(app: Callable, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` until the ``with`` block ends; yields its base URL (no trailing slash).

    ``port=0`` picks a free port. If the app has a ``base_url`` attribute it is
    set, so the emulator can build absolute URLs (``instance_url``) itself.
    """
    server = make_server(app, host, port)
    base_url = f"http://{host}:{server.server_port}"
    if hasattr(app, "base_url"):
        app.base_url = base_url
    thread = threading.Thread(target=server.serve_forever, name=f"wsgi-{server.server_port}",
                              kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


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
    base_url = f"http://{host}:{server.server_port}"
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

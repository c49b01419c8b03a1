"""Serve a WSGI app on a loopback port in a background thread.

Every API emulator (Salesforce, HubSpot, ERP REST...) is a plain WSGI app, so
tests, benchmarks and ``crm2erp emulator run`` all serve it the same way:
a real HTTP server on 127.0.0.1 that a connector talks to over real sockets.
"""

from __future__ import annotations

__all__ = ["serve_wsgi", "QuietHandler", "ThreadingWSGIServer", "make_server"]

import contextlib
import logging
import socketserver
import threading
from collections.abc import Callable, Iterator
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

"""Fixtures the connector tests share.

``serve(app)`` serves an emulator (any WSGI app) on a loopback port until the
test ends and returns it with its ``base_url`` set, so a test file's own
fixture is just the emulator it wants: ``return serve(make_app(seed=4))``.

Each test still gets a freshly seeded emulator of its own; only the servers
outlive the test: a worker keeps a few loopback servers running and points
one at the test's app, instead of starting and stopping a server per test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from crm2erp.emulators.kernel.server import make_server


class _LoopbackServer:
    """A running loopback server that passes each request to its current ``app``."""

    def __init__(self):
        self.app: Callable | None = None
        self._server = make_server(self)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"emulator-{self._server.server_port}")
        self._thread.start()

    def __call__(self, environ, start_response):
        app = self.app
        if app is None:   # a request after its test ended
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return [b""]
        return app(environ, start_response)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="session")
def _idle_servers():
    idle: list[_LoopbackServer] = []
    yield idle
    for server in idle:
        server.stop()


@pytest.fixture
def serve(_idle_servers):
    """``serve(app)``: ``app`` served until the test ends; returns ``app``."""
    taken: list[_LoopbackServer] = []

    def start(app):
        server = _idle_servers.pop() if _idle_servers else _LoopbackServer()
        server.app = app
        if hasattr(app, "base_url"):
            app.base_url = server.url
        taken.append(server)
        return app

    yield start
    for server in taken:
        server.app = None
        _idle_servers.append(server)

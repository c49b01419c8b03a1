"""A scripted loopback HTTP server: each test queues the answers it wants."""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from urllib.parse import parse_qs

import pytest

from crm2erp.emulators.kernel.server import serve_wsgi


class ScriptedApp:
    """Answers each path from its queue of (status, body, headers); the last answer repeats."""

    def __init__(self):
        self.script: dict[str, deque] = defaultdict(deque)
        self.handlers: dict[str, object] = {}
        self.seen: list[dict] = []
        self.lock = threading.Lock()
        self.base_url = ""

    def on(self, path, status=200, body=None, headers=None, times=1):
        for _ in range(times):
            self.script[path].append((status, body, headers or {}))

    def handle(self, path, fn):
        """fn(request dict) -> (status, body, headers)."""
        self.handlers[path] = fn

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = {"method": environ["REQUEST_METHOD"], "path": path,
                   "query": {k: v[-1] for k, v in parse_qs(environ["QUERY_STRING"]).items()},
                   "body": environ["wsgi.input"].read(length) if length else b"",
                   "headers": {k[5:].replace("_", "-").title(): v for k, v in environ.items()
                               if k.startswith("HTTP_")}}
        with self.lock:
            self.seen.append(request)
            if path in self.handlers:
                status, body, headers = self.handlers[path](request)
            elif self.script[path]:
                queue = self.script[path]
                status, body, headers = queue.popleft() if len(queue) > 1 else queue[0]
            else:
                status, body, headers = 404, {"error": "not scripted"}, {}
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        start_response(f"{status} X", [("Content-Type", "application/json"),
                                       ("Content-Length", str(len(data))), *headers.items()])
        return [data]

    def calls(self, path):
        return [r for r in self.seen if r["path"] == path]


@pytest.fixture
def scripted():
    app = ScriptedApp()
    with serve_wsgi(app):
        yield app

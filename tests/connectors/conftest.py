"""Fixtures the connector tests share.

``serve(app)`` runs an emulator (any WSGI app) on a loopback port until the
test ends and returns it with its ``base_url`` set, so a test file's own
fixture is just the emulator it wants: ``return serve(make_app(seed=4))``.
"""

from __future__ import annotations

import contextlib

import pytest

from crm2erp.testing.server import serve_wsgi


@pytest.fixture
def serve():
    """``serve(app)``: ``app`` served until the test ends; returns ``app``."""
    with contextlib.ExitStack() as running:
        def start(app):
            running.enter_context(serve_wsgi(app))
            return app
        yield start

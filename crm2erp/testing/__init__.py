"""Test helpers shipped with crm2erp: the emulator server and the connector conformance suite.

:mod:`crm2erp.testing.server` serves any WSGI emulator on a loopback port;
:mod:`crm2erp.testing.conformance` is the pytest plugin with the checks every
connector must pass.
"""

from __future__ import annotations

__all__ = ["serve_wsgi"]

from crm2erp.testing.server import serve_wsgi

"""Test helpers shipped with crm2erp: the connector conformance suite and its fixtures.

:mod:`crm2erp.testing.conformance` is the pytest plugin with the checks every
connector must pass; the emulators it is usually run against, and the server
that serves them, live in :mod:`crm2erp.emulators`.
"""

"""SOQL literals as the connector writes them into its queries.

The emulator's parser of the same subset is :mod:`crm2erp.emulators.salesforce.soql`.
"""

from __future__ import annotations

__all__ = ["soql_datetime", "quote"]

import datetime as dt


def soql_datetime(value: dt.datetime) -> str:
    """A SOQL datetime literal in UTC, whole seconds (``2024-01-31T10:00:00Z``)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def quote(value: str) -> str:
    """A SOQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

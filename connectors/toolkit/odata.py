"""OData query literals both OData connectors write (Dataverse's v4 Web API, SAP
Gateway's v2 services): a string in single quotes, each quote inside doubled.
Typed literals (``datetime'...'``, a v4 date) stay with the connector whose
version spells them."""

from __future__ import annotations

__all__ = ["odata_string"]

from typing import Any


def odata_string(value: Any) -> str:
    """``value`` as text in an OData string literal: ``O'Neil`` -> ``'O''Neil'``."""
    return "'" + str(value).replace("'", "''") + "'"

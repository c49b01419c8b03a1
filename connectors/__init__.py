"""Connectors, registered by entry point (group ``crm2erp.connectors``, :mod:`crm2erp.registry`).

A third-party package adds a connector by declaring, in its own metadata::

    [options.entry_points]
    crm2erp.connectors =
        mycrm = mypackage.connector:MyCrmConnector
"""

from __future__ import annotations

__all__ = [
    "Batch",
    "Connector",
    "Cursor",
    "DeleteMode",
    "Row",
    "StreamInfo",
    "WriteAction",
    "WriteResult",
    "available",
    "load_connector_class",
    "create_connector",
]

from crm2erp.connectors.base import (
    Batch,
    Connector,
    Cursor,
    DeleteMode,
    Row,
    StreamInfo,
    WriteAction,
    WriteResult,
)
from crm2erp.registry import CONNECTORS as GROUP
from crm2erp.registry import available as _available
from crm2erp.registry import create_connector, load_connector_class


def available() -> dict[str, str]:
    """Connector type name -> ``module:Class`` for every registered connector."""
    return _available(GROUP)

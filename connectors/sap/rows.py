"""SAP OData v2 entities as connector rows.

A row is the entity's JSON with OData's envelope taken off: ``__metadata``
dropped, ``/Date(...)/`` and ``PT..`` values as datetimes and times, expanded
to-many navigation properties as plain lists (``{"results": [...]}`` unwrapped)
and deferred ones left out. Decimals stay the strings SAP sent.
"""

from __future__ import annotations

__all__ = ["clean"]

from typing import Any

from crm2erp.connectors.sap.odata import from_wire


def clean(entity: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in entity.items():
        if name == "__metadata" or (isinstance(value, dict) and "__deferred" in value):
            continue
        if isinstance(value, dict) and isinstance(value.get("results"), list):
            out[name] = [clean(v) for v in value["results"]]
        else:
            out[name] = clean(value) if isinstance(value, dict) else from_wire(value)
    return out

"""The OData V4 queries the Dataverse emulator understands: ``$filter`` and key segments.

``$filter`` is the emulators' shared parser (:mod:`crm2erp.emulators.kernel.odata`,
V4 literals: bare ``...Z`` datetimes, dates, GUIDs) with Dataverse's collation
(strings compare without case); a query it refuses gets the Web API's own
error code and message.
"""

from __future__ import annotations

__all__ = ["ODataError", "parse_filter", "parse_key", "Predicate"]

import dataclasses
import re
import uuid
from typing import Any

from crm2erp.emulators.kernel import odata
from crm2erp.emulators.kernel.odata import V4, FilterError, Predicate

DATAVERSE = dataclasses.replace(V4, name="Dataverse Web API", ignore_case=True)


class ODataError(ValueError):
    """A query the Web API would refuse; ``code`` is the Dataverse error code."""

    def __init__(self, message: str, code: str = "0x80060888"):
        super().__init__(message)
        self.code = code


def parse_filter(text: str, columns: set[str]) -> Predicate:
    """Compile ``text`` into a predicate over records (dicts keyed by column), with
    Dataverse's collation (strings compare without case) and its error messages."""
    try:
        return odata.parse_filter(text, columns, DATAVERSE)
    except FilterError as exc:
        if exc.unknown:
            raise ODataError(f"Could not find a property named '{exc.unknown}' on type "
                             "'Microsoft.Dynamics.CRM.entity'.") from None
        raise ODataError(f"Syntax error in filter '{text}': {exc}") from None


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_KEY_PART = re.compile(r"\s*([a-z_][a-z0-9_]*)\s*=\s*('(?:[^']|'')*'|-?\d+(?:\.\d+)?)\s*(,|$)")


def parse_key(text: str, key_column: str) -> dict[str, Any]:
    """A key segment: ``<guid>`` -> ``{key_column: guid}``; ``a='x',b=2`` -> ``{a: 'x', b: 2}``."""
    text = text.strip()
    if _GUID.match(text):
        return {key_column: str(uuid.UUID(text))}
    out: dict[str, Any] = {}
    pos = 0
    while pos < len(text):
        m = _KEY_PART.match(text, pos)
        if not m:
            raise ODataError(f"Bad Request - Error in query syntax: invalid key '{text}'.",
                             code="0x80060891")
        raw = m[2]
        out[m[1]] = raw[1:-1].replace("''", "'") if raw.startswith("'") else raw
        pos = m.end()
    if not out:
        raise ODataError("Bad Request - Error in query syntax: empty key.", code="0x80060891")
    return out

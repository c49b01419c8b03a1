"""The numbers an API's answers carry in their headers, read once.

Many APIs report their rate limits and quotas in every answer's headers
(HubSpot's ``X-HubSpot-RateLimit-Daily-Remaining``, the common
``X-RateLimit-Remaining``); a connector reports them, warns when a quota runs
low or waits by them. :func:`header_numbers` reads the ones a connector names.
"""

from __future__ import annotations

__all__ = ["header_numbers"]

from collections.abc import Mapping

import requests


def header_numbers(resp: requests.Response | None, headers: Mapping[str, str]) -> dict[str, int]:
    """``{name: int value}`` of ``headers`` (``{name: header}``, rate limit headers say)
    in ``resp``; a header missing or not an integer is left out (all, without ``resp``)."""
    found: dict[str, int] = {}
    if resp is None:
        return found
    for name, header in headers.items():
        try:
            found[name] = int(resp.headers[header])
        except (KeyError, ValueError):
            continue
    return found

"""What every connector's error table starts from: the request an answer is for,
and the answer's JSON body when it has one."""

from __future__ import annotations

__all__ = ["error_body", "request_line"]

from typing import Any
from urllib.parse import unquote, urlsplit

import requests


def request_line(resp: requests.Response) -> str:
    """``"PATCH /api/data/v9.2/accounts(...)"``: the method and (decoded) path ``resp``
    answers, for error messages."""
    method = resp.request.method if resp.request is not None else "GET"
    return f"{method} {unquote(urlsplit(resp.url).path)}"


def error_body(resp: requests.Response) -> Any:
    """The decoded JSON body of ``resp``, or None when it is not JSON."""
    try:
        return resp.json()
    except ValueError:
        return None

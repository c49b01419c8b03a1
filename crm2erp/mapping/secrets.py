"""Register the secrets of ``connections.yaml`` with :mod:`crm2erp.redact`.

A secret is the value of a setting whose name says so (``password``,
``client_secret``, ``api_key``, ``token``... at any depth), the password or
credential query parameters of a URL setting, and every environment variable
that ``${VAR}`` brings into such a place or whose own name says it is a secret.
Nothing else is masked: business data never is.
"""

from __future__ import annotations

__all__ = ["register_connection_secrets"]

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from crm2erp.mapping.yamlpos import DataPath
from crm2erp.redact import is_secret_name, register_secret

_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://\S+")


def _url_secrets(text: str) -> list[str]:
    found = []
    for match in _URL.finditer(text):
        try:
            parts = urlsplit(match.group(0))
            password = parts.password
        except ValueError:
            continue
        found.append(password or "")
        found += [v for k, v in parse_qsl(parts.query) if is_secret_name(k)]
    return found


def _secret_path(path: DataPath) -> bool:
    return any(isinstance(part, str) and is_secret_name(part) for part in path)


def register_connection_secrets(data: Any, used: list[tuple[DataPath, str, str]]) -> None:
    """Register the secrets of the (expanded) ``connections.yaml`` document ``data``;
    ``used`` lists the environment variables expanded in it (path, name, value)."""
    for path, name, value in used:
        if is_secret_name(name) or _secret_path(path):
            register_secret(value)

    def walk(value: Any, secret: bool, auth: bool = False) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                # `auth: {type: api_key, key: ...}`: a bare "key" is secret there only
                walk(item, secret or is_secret_name(str(key)) or (auth and key == "key"),
                     key == "auth")
        elif isinstance(value, list):
            for item in value:
                walk(item, secret)
        elif isinstance(value, str):
            if secret:
                register_secret(value)
            for found in _url_secrets(value):
                register_secret(found)

    walk(data, False)

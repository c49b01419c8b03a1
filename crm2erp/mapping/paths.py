"""Dotted paths into records: ``billing_address.city``, ``lines.0.sku``.

Reading is forgiving (a missing step gives None: optional source fields are
normal); writing creates the nested dicts a dotted target names.
"""

from __future__ import annotations

__all__ = ["get_path", "make_getter", "make_setter"]

from collections.abc import Callable, Mapping
from typing import Any


def get_path(record: Any, path: str) -> Any:
    """The value at ``path``; a key that itself contains dots wins if present."""
    if isinstance(record, Mapping) and path in record:
        return record[path]
    cur = record
    for part in path.split("."):
        if isinstance(cur, Mapping):
            cur = cur.get(part)
        elif isinstance(cur, list | tuple) and part.lstrip("-").isdigit():
            index = int(part)
            cur = cur[index] if -len(cur) <= index < len(cur) else None
        else:
            return None
        if cur is None:
            return None
    return cur


def make_getter(path: str) -> Callable[[Any], Any]:
    """A reader for ``path``, with a fast path for plain keys."""
    if "." not in path:
        def get_plain(record: Any) -> Any:
            return record.get(path) if isinstance(record, Mapping) else None
        return get_plain
    return lambda record: get_path(record, path)


def make_setter(path: str) -> Callable[[dict[str, Any], Any], None]:
    """A writer for the dotted target ``path`` into an output dict."""
    parts = path.split(".")
    last = parts[-1]
    if len(parts) == 1:
        def set_plain(out: dict[str, Any], value: Any) -> None:
            out[last] = value
        return set_plain
    head = parts[:-1]

    def set_nested(out: dict[str, Any], value: Any) -> None:
        cur = out
        for part in head:
            nxt = cur.get(part)
            if not isinstance(nxt, dict):
                nxt = cur[part] = {}
            cur = nxt
        cur[last] = value

    return set_nested

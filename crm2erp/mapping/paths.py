"""Dotted paths into records: ``billing_address.city``, ``lines.0.sku``.

Reading is forgiving (a missing step gives None: optional source fields are
normal); writing creates the nested dicts a dotted target names. Mappings
read with :func:`make_getter`, which tells a field the record does not have
at all (:data:`ABSENT`) from one it has with a null value.
"""

from __future__ import annotations

__all__ = ["ABSENT", "get_path", "make_getter", "make_setter"]

from collections.abc import Callable, Mapping
from typing import Any


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


#: What :func:`make_getter`'s readers return when a record lacks a key on the path.
ABSENT: Any = _Absent()


def _lookup(record: Any, path: str) -> Any:
    """The value at ``path``, or ABSENT when a record on the way lacks the key.

    A null value or a list index out of range on the way gives None (the
    record says there is nothing there); only a missing key is ABSENT.
    """
    return _walk(record, path, path.split("."))


def _walk(record: Any, path: str, parts: list[str] | tuple[str, ...]) -> Any:
    """:func:`_lookup` with ``path`` already split into ``parts`` (a getter splits once).
    A plain ``dict`` is recognised by its type before the slower ``Mapping`` check."""
    if (type(record) is dict or isinstance(record, Mapping)) and path in record:
        return record[path]
    cur = record
    for part in parts:
        if type(cur) is dict or isinstance(cur, Mapping):
            if part not in cur:
                return ABSENT
            cur = cur[part]
        elif isinstance(cur, list | tuple) and part.lstrip("-").isdigit():
            index = int(part)
            cur = cur[index] if -len(cur) <= index < len(cur) else None
        else:
            return None
        if cur is None:
            return None
    return cur


def get_path(record: Any, path: str) -> Any:
    """The value at ``path`` (None when there is none); a key that itself contains dots
    wins if present."""
    value = _lookup(record, path)
    return None if value is ABSENT else value


def make_getter(path: str, absent: Any = ABSENT) -> Callable[[Any], Any]:
    """A reader for ``path`` giving ``absent`` when the record lacks it; fast for plain keys."""
    if "." not in path:
        def get_plain(record: Any) -> Any:
            if type(record) is not dict and not isinstance(record, Mapping):  # dict: fast
                return None
            return record.get(path, absent)
        return get_plain
    parts = tuple(path.split("."))
    if absent is ABSENT:
        return lambda record: _walk(record, path, parts)

    def get_nested(record: Any) -> Any:
        value = _walk(record, path, parts)
        return absent if value is ABSENT else value
    return get_nested


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

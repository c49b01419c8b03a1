"""Records' fields by dotted name: renamed, nested, and checked as stored, written once.

An API's record is nested JSON (``custom_fields.erp_id``, ``address.locality``);
a row is what the mappings read. :func:`apply_rename` renames a record's
fields, a dotted name reading from or building a nested object; :func:`nest`
turns a row's dotted names into the nested objects a request body needs.
:func:`unstored` names the fields of a request body that the record the API
answered (or reads back) does not hold as sent: an API that answers 200 to a
field it does not know is caught this way. :func:`record_value` is a row field
that holds a record of its own (an address, a contact) written to a linked record.
"""

from __future__ import annotations

__all__ = ["apply_rename", "nest", "record_value", "stored_as_sent", "unstored"]

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from crm2erp.connectors.base import Row
from crm2erp.mapping.paths import get_path, make_setter

_MISSING = object()


def _take(row: dict[str, Any], path: str) -> Any:
    """Remove the value at dotted ``path`` from ``row``, copying the objects on the way."""
    if path in row:
        return row.pop(path)
    parts = path.split(".")
    holder = row
    for part in parts[:-1]:
        child = holder.get(part)
        if not isinstance(child, Mapping):
            return _MISSING
        holder[part] = child = dict(child)
        holder = child
    return holder.pop(parts[-1], _MISSING)


def apply_rename(record: dict[str, Any], rename: dict[str, str]) -> Row:
    """``record`` with fields renamed; dotted names read from and build nested objects."""
    if not rename:
        return dict(record)
    plain = {a: b for a, b in rename.items() if "." not in a and "." not in b}
    row = {plain.get(name, name): value for name, value in record.items()}
    for source, target in rename.items():
        if source not in plain and (value := _take(row, source)) is not _MISSING:
            make_setter(target)(row, value)
    return row


def nest(row: Row) -> Row:
    """Row fields named by dotted paths (``custom_fields.erp_id``) as nested objects."""
    if not any("." in name for name in row):
        return row
    out: Row = {}
    for name, value in row.items():
        make_setter(name)(out, value)
    return out


def record_value(value: Any, what: str, *,
                 error: type[Exception] = ValueError) -> dict[str, Any]:
    """A row field that holds a record of fields (an address, a contact written to a
    linked record): its fields that are not empty (``None``, ``""``), ``{}`` for None;
    ``error("<what>: the row's value must be a record of its fields, got ...")`` when
    it is not a dict."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise error(f"{what}: the row's value must be a record of its fields, got "
                    f"{type(value).__name__} {str(value)[:60]!r}")
    return {k: v for k, v in value.items() if v not in (None, "")}


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted path, value)`` of every leaf of a JSON object."""
    if isinstance(value, Mapping) and value:
        for name, item in value.items():
            yield from _leaves(item, f"{prefix}{name}.")
    else:
        yield prefix[:-1], value


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value).strip())
    except ArithmeticError:
        return None


def stored_as_sent(sent: Any, stored: Any) -> bool:
    """Whether the API stored what was sent: equal, both empty, or the same number.

    Stricter than :func:`~crm2erp.connectors.toolkit.values.same_value`: numbers
    compare as numbers only when one side is a JSON number (``"007"`` sent and
    ``"7"`` stored is a change), and a boolean never equals a number.
    """
    if isinstance(sent, bool) != isinstance(stored, bool):
        return False                                    # True == 1 in Python, not in JSON
    if sent == stored or (sent in (None, "") and stored in (None, "")):
        return True
    if isinstance(sent, int | float) or isinstance(stored, int | float):
        a, b = _number(sent), _number(stored)
        return a is not None and b is not None and a.is_finite() and a == b
    return False


def unstored(sent: Mapping[str, Any], stored: Mapping[str, Any],
             ignore: Sequence[str] = (), *,
             default: Callable[[Any], Any] | None = None) -> list[str]:
    """The fields of ``sent`` (a request body, encoded as JSON with ``default``) that
    ``stored`` does not hold as sent, each as ``path (sent x, it holds y)``; a field
    named in ``ignore``, or inside one, is not compared."""
    missing = []
    for path, value in _leaves(json.loads(json.dumps(sent, default=default))):
        if any(path == i or path.startswith(i + ".") for i in ignore):
            continue
        held = get_path(stored, path)
        if not stored_as_sent(value, held):
            missing.append(f"{path} (sent {value!r}, it holds {held!r})")
    return missing

"""Embedding a stream's ``children`` into the rows of a batch, written once.

Each row gets, under each child's name, the list of child rows whose parent it
is (``[]`` for none). The connector says how the children of some parents are
read; :func:`children_by_parent` is the loop for APIs that filter children by a
foreign key, a chunk of parent ids per query.
"""

from __future__ import annotations

__all__ = ["children_by_parent", "embed_children"]

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from crm2erp.connectors.base import Batch, Row
from crm2erp.connectors.toolkit.batches import chunks

#: ``fetch(child config, parent ids)`` -> ``{parent id: [child rows]}``
Fetch = Callable[[Any, list[str]], Mapping[str, list[Row]]]


def embed_children(batch: Batch, key: str, children: Mapping[str, Any], fetch: Fetch) -> Batch:
    """``batch`` with ``row[name]`` set for each of ``children`` (``{name: child config}``);
    rows are found by their ``key`` field."""
    if not children or not batch.rows:
        return batch
    ids = [str(row[key]) for row in batch.rows]
    for name, child in children.items():
        found = fetch(child, ids)
        for row in batch.rows:
            row[name] = found.get(str(row[key]), [])
    return batch


def children_by_parent(ids: list[str], foreign_key: str,
                       query: Callable[[list[str]], Iterable[Row]], *,
                       chunk: int) -> dict[str, list[Row]]:
    """``{parent id: [child rows in the order query gives]}``: ``query(some ids)`` reads the
    children of at most ``chunk`` parents; each row's ``foreign_key`` names its parent."""
    out: dict[str, list[Row]] = {}
    for some in chunks(ids, chunk):
        for row in query(list(some)):
            out.setdefault(str(row[foreign_key]), []).append(row)
    return out

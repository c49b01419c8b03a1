"""Entity and system names as small integers in the tables with a row per record.

``xref`` and ``canonical_records`` repeated an entity name ("Account") and a
system name ("crm") in every row and index entry; they hold the name's number
in the ``names`` table instead (migration 0013). A store keeps the numbers it
has seen: a name is looked up once per process, added once ever.
"""

from __future__ import annotations

__all__ = ["NameIds"]

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager

import sqlalchemy as sa

from crm2erp.store.tables import names


class NameIds:
    """The numbers of names in one store's ``names`` table, cached."""

    def __init__(self, engine: sa.Engine,
                 reading: Callable[[], AbstractContextManager[sa.Connection]]):
        """``reading``: the store's connections for reads (on SQLite: no write lock)."""
        self._engine = engine
        self._reading = reading
        self._ids: dict[str, int] = {}

    def known(self, name: str) -> int | None:
        """The name's number, or None when the store has none: nothing was written
        under it (a miss is not kept: another process may add the name)."""
        if name not in self._ids:
            with self._reading() as conn:
                found = conn.execute(sa.select(names.c.id).where(names.c.name == name)
                                     ).scalar_one_or_none()
            if found is None:
                return None
            self._ids[name] = found
        return self._ids[name]

    def ids(self, wanted: Iterable[str]) -> dict[str, int]:
        """Every wanted name's number, adding those the store has not got (each in
        its own transaction, before the caller's write: a number never comes from a
        transaction that may yet roll back)."""
        for name in set(wanted) - set(self._ids):
            if self.known(name) is None:
                try:
                    with self._engine.begin() as conn:
                        conn.execute(names.insert().values(name=name))
                except sa.exc.IntegrityError:   # another process added it just now
                    pass
                if self.known(name) is None:
                    raise RuntimeError(f"the name {name!r} was added but is not found")
        return {name: self._ids[name] for name in wanted}

"""Foreign keys across systems, through the id cross-reference.

Inbound, a system's id becomes a canonical id: the one the xref already holds
(a merge may have pointed two source records at one canonical record), else
a deterministic UUID5 of entity, system and id, so the same source record
gets the same canonical id on every machine and every retry.
Outbound, a canonical id becomes the target system's id; when the target has
no such record yet, :class:`ParentMissingError` parks the child.
"""

from __future__ import annotations

__all__ = ["StoreResolver", "canonical_id_for"]

import uuid

from crm2erp.errors import ParentMissingError

_NAMESPACE = uuid.UUID("6f1c2b1e-6a52-4d8e-9a55-2b0d4c1e7a10")


def canonical_id_for(entity: str, system: str, external_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{entity}\x1f{system}\x1f{external_id}"))


class StoreResolver:
    """Implements the mapping language's ``Resolver`` over the state store.

    Inbound ids are cached for the run (a miss is the record's deterministic
    id); outbound, only positive answers are, since a parent may be written by
    the time the next record asks. The caches hold at most about ``limit``
    entries: they are emptied between batches (in :meth:`prefetch`) once they
    are fuller, so memory stays flat whatever the run's size (a dropped entry
    only costs a look-up again).
    """

    def __init__(self, store, limit: int = 20_000):
        self.store = store
        self.limit = limit
        self._to_canonical: dict[tuple[str, str, str], str] = {}
        self._from_canonical: dict[tuple[str, str, str], str] = {}
        self._origin: dict[tuple[str, str], tuple[str, str]] = {}  # (entity, cid) -> source

    def prefetch(self, entity: str, system: str, external_ids,
                 known: dict[str, str] | None = None) -> None:
        """Look the ids not cached yet up in one query (none when ``known``, their
        canonical ids as the caller read them from the xref, is given)."""
        if len(self._to_canonical) + len(self._from_canonical) > self.limit:
            self._to_canonical.clear()      # between batches: none of this batch's yet
            self._from_canonical.clear()
            self._origin.clear()
        wanted = [str(e) for e in external_ids
                  if (entity, system, str(e)) not in self._to_canonical]
        if not wanted:
            return
        # one query per batch; a miss gets its deterministic id, as below
        found = self.store.canonical_ids(entity, system, wanted) if known is None else known
        for ext in wanted:
            cid = found.get(ext) or canonical_id_for(entity, system, ext)
            self._to_canonical[(entity, system, ext)] = cid
            self._origin[(entity, cid)] = (system, ext)

    def to_canonical(self, entity: str, system: str, external_id) -> str:
        key = (entity, system, str(external_id))
        if key not in self._to_canonical:
            found = self.store.canonical_ids(entity, system, [key[2]])
            self._to_canonical[key] = found.get(key[2]) or canonical_id_for(*key)
            self._origin[(entity, self._to_canonical[key])] = (system, key[2])
        return self._to_canonical[key]

    def from_canonical(self, entity: str, system: str, canonical_id) -> str:
        key = (entity, system, str(canonical_id))
        if key not in self._from_canonical:
            found = self.store.external_ids(entity, system, [key[2]])
            if key[2] not in found:
                origin = self._origin.get((entity, key[2]))
                name = (f"{entity} {origin[1]!r} of {origin[0]!r}" if origin
                        else f"{entity} {canonical_id}")
                raise ParentMissingError(
                    f"parent {name} is not in {system!r} yet: it is synced by its own "
                    "flow, or held in the dead letters", entity=entity, key=str(canonical_id))
            self._from_canonical[key] = found[key[2]]
        return self._from_canonical[key]

    def remember(self, entity: str, system: str, external_id: str, canonical_id: str) -> None:
        """Record a write of this run so later records of the run can refer to it."""
        self._to_canonical[(entity, system, external_id)] = canonical_id
        self._from_canonical[(entity, system, canonical_id)] = external_id

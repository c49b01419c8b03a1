"""The id cross-reference look-up the ``xref`` transform needs.

The engine implements :class:`Resolver` on top of the state store; mappings
only see this protocol. :class:`DictResolver` is an in-memory version for
tests and ``crm2erp mappings explain``.
"""

from __future__ import annotations

__all__ = ["Resolver", "DictResolver"]

from typing import Protocol, runtime_checkable

from crm2erp.errors import ParentMissingError


@runtime_checkable
class Resolver(Protocol):
    def to_canonical(self, entity: str, system: str, external_id: str) -> str:
        """Canonical id of ``system``'s record ``external_id``.

        Raises ParentMissingError when the record is not known yet.
        """
        ...

    def from_canonical(self, entity: str, system: str, canonical_id: str) -> str:
        """``system``'s id for the canonical record; raises ParentMissingError."""
        ...


class DictResolver:
    """Links held in a dict: ``(entity, system, external_id) -> canonical_id``."""

    def __init__(self, links: dict[tuple[str, str, str], str] | None = None):
        self._to: dict[tuple[str, str, str], str] = {}
        self._from: dict[tuple[str, str, str], str] = {}
        for (entity, system, external_id), canonical_id in (links or {}).items():
            self.add(entity, system, external_id, canonical_id)

    def add(self, entity: str, system: str, external_id: str, canonical_id: str) -> None:
        self._to[(entity, system, str(external_id))] = str(canonical_id)
        self._from[(entity, system, str(canonical_id))] = str(external_id)

    def to_canonical(self, entity: str, system: str, external_id: str) -> str:
        try:
            return self._to[(entity, system, str(external_id))]
        except KeyError:
            raise ParentMissingError(
                f"{entity} {external_id!r} of system {system!r} has not been synced yet",
                entity=entity,
                key=str(external_id),
            ) from None

    def from_canonical(self, entity: str, system: str, canonical_id: str) -> str:
        try:
            return self._from[(entity, system, str(canonical_id))]
        except KeyError:
            raise ParentMissingError(
                f"{entity} {canonical_id!r} has no record in system {system!r} yet",
                entity=entity,
                key=str(canonical_id),
            ) from None

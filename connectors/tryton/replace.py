"""Merging two parties with Tryton's own ``party.replace`` wizard (module ``party``).

The wizard repoints every Many2One to the source party that the activated
modules register (sales, invoices, addresses, contact mechanisms...) to the
destination, archives the source and its addresses and contact mechanisms,
and sets the source's ``replaced_by``. It asks twice before it does so, with
UserWarnings: the two parties have different names, or different tax
identifiers. A steward who accepted the pair has answered both; each warning
is acknowledged once (a ``res.user.warning``, as the Tryton client does) and
named in the result's note.
"""

from __future__ import annotations

__all__ = ["replace_party"]

import logging

from crm2erp.connectors.base import WriteAction, WriteResult
from crm2erp.connectors.toolkit.records import as_id
from crm2erp.connectors.tryton.client import TrytonClient, TrytonUserError
from crm2erp.connectors.tryton.common import NOT_ACTIVE, search_in

log = logging.getLogger(__name__)

#: the wizard asks at most this many questions (name, tax identifier)
MAX_WARNINGS = 2


def replace_party(client: TrytonClient, loser_id: str, survivor_id: str) -> WriteResult:
    """Replace party ``loser_id`` by ``survivor_id``; FAILED with the reason when refused."""
    source, destination = as_id(loser_id), as_id(survivor_id)
    if source is None or destination is None or source == destination:
        return WriteResult(loser_id, WriteAction.FAILED, error=(
            f"cannot replace party {loser_id!r} by {survivor_id!r}: two different Tryton "
            "party ids are needed"))
    found = {p["id"]: p for p in search_in(client, "party.party", "id", [source, destination],
                                           ["active", "replaced_by"], NOT_ACTIVE)}
    missing = [str(i) for i in (source, destination) if i not in found]
    if missing:
        return WriteResult(loser_id, WriteAction.FAILED, error=(
            f"no party.party with id {', '.join(missing)} in Tryton (deleted by hand?); "
            "nothing was replaced"))
    if found[source]["replaced_by"] == destination:
        return WriteResult(loser_id, WriteAction.UNCHANGED, loser_id)
    data = {"ask": {"source": source, "destination": destination}}
    context = {"active_model": "party.party", "active_id": source, "active_ids": [source]}
    answered: list[str] = []
    while True:
        try:
            client.wizard("party.replace", "replace", data, context=context)
            break
        except TrytonUserError as exc:
            if exc.kind != "UserWarning" or not exc.name or len(answered) >= MAX_WARNINGS:
                return WriteResult(loser_id, WriteAction.FAILED, error=(
                    f"Tryton's party.replace of party {source} by {destination} failed: "
                    f"{exc}"))
            log.info("party.replace %s -> %s: %s; accepted by the steward's decision",
                     source, destination, exc)
            answered.append(str(exc).removeprefix("Tryton refused (UserWarning): "))
            client.skip_warning(exc.name)
    note = f"acknowledged: {'; '.join(answered)}" if answered else None
    return WriteResult(loser_id, WriteAction.UPDATED, loser_id, error=note)

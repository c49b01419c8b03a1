"""Making a record's ordered child records say what a row says, written once.

ERPs keep a record's children (phones, e-mails, addresses...) as records of
their own, ordered by a ``sequence`` and archived (``active = False``) rather
than deleted, and use the first one of a kind (the first phone is *the*
phone). :func:`plan_children` brings them in line with the children a row
wants, in the row's order: each wanted child is matched with a current one of
the same signature (an active one before an archived one, each current child
matched once); an archived match is reactivated, a ``compare`` field that
differs is written; a wanted child without a match is created. Then, when
``reorder`` is set, the current active children that are not wanted are
archived when ``retire`` says so, the others kept after the wanted ones, and
every child gets its place (1, 2, ...) as ``sequence``. The connector turns
the plan into its API's calls.
"""

from __future__ import annotations

__all__ = ["ChildPlan", "plan_children"]

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: ``(signature, child)``: what a child is matched on, and its values (current children
#: have ``id``, ``active`` and ``sequence``)
Child = tuple[Hashable, Mapping[str, Any]]


@dataclass
class ChildPlan:
    """The values of the children to create (with their ``sequence`` when reordered),
    and the changes of current children by id."""

    creates: list[dict[str, Any]] = field(default_factory=list)
    writes: dict[Any, dict[str, Any]] = field(default_factory=dict)


def plan_children(current: Sequence[Child], wanted: Sequence[Child], *,
                  compare: Sequence[str] = (), reorder: bool = True,
                  retire: Callable[[Mapping[str, Any]], bool] | None = None) -> ChildPlan:
    """The :class:`ChildPlan` that makes ``wanted`` the first active children (see the
    module docstring); ``reorder=False`` only adds, reactivates and corrects."""
    plan = ChildPlan()
    used: set[Any] = set()
    order: list[Any] = []     # the wanted children first: a current id, or new values
    active_first = sorted(current, key=lambda item: not item[1]["active"])
    for signature, want in wanted:
        match = next((child for sig, child in active_first
                      if sig == signature and child["id"] not in used), None)
        if match is None:
            order.append(dict(want))
            continue
        used.add(match["id"])
        order.append(match["id"])
        change = {k: v for k, v in want.items() if k in compare and bool(match.get(k)) != v}
        if not match["active"]:
            change["active"] = True
        if change:
            plan.writes[match["id"]] = change
    if not reorder:
        plan.creates = [item for item in order if isinstance(item, dict)]
        return plan
    rest = [child for _, child in current if child["active"] and child["id"] not in used]
    for child in rest:
        if retire is not None and retire(child):
            plan.writes[child["id"]] = {"active": False}
    order += [child["id"] for child in rest if child["id"] not in plan.writes]
    sequence = {child["id"]: child.get("sequence") for _, child in current}
    for place, item in enumerate(order, 1):
        if isinstance(item, dict):
            plan.creates.append({**item, "sequence": place})
        elif sequence.get(item) != place:
            plan.writes[item] = {**plan.writes.get(item, {}), "sequence": place}
    return plan

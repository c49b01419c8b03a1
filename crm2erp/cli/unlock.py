"""``crm2erp unlock FLOW``: release a flow's lock by hand, after showing who holds it."""

from __future__ import annotations

import typer

from crm2erp.cli.context import settings
from crm2erp.cli.output import console, literal


def unlock(ctx: typer.Context,
           flow: str = typer.Argument(..., help="Flow name (its partitions' locks too), "
                                                "or one partition's lock name (flow#p1of4)."),
           yes: bool = typer.Option(False, "--yes", "-y", help="Release without asking.")
           ) -> None:
    """Release FLOW's lock. Its running run is recorded as crashed; if that run is in
    fact alive, it stops at its next heartbeat. Needed only for a hung run: a lock
    whose process died on this host, or whose lease expired, is taken over by itself."""
    store = settings(ctx).open_store(create=False)
    try:
        held = store.lock_holders(flow)
        if not held:
            others = ", ".join(h.flow for h in store.lock_holders()) or "none"
            console.print(literal(f"flow {flow!r} is not locked; nothing to release "
                                 f"(locked now: {others})"))
            return
        for holder in held:
            console.print(literal(holder.describe()))
            if holder.gone() is None:
                console.print("[yellow]its run looks alive: releasing lets a second run "
                              "start next to it (it stops at its next heartbeat)[/]")
        if not yes and not typer.confirm(f"Release {len(held)} lock(s)?"):
            console.print("nothing released")
            return
        for holder in held:
            done = store.unlock(holder)
            console.print(literal(f"{holder.flow}: released; a run it left running is now "
                                 "crashed" if done
                                 else f"{holder.flow}: already released meanwhile"))
    finally:
        store.close()

"""Re-sync one record: read it from the flow's source now and write it to the target.

Reconciliation finds a record whose target copy differs from what its source
maps to (someone edited the customer in the ERP, say). Re-syncing it runs that
one record through the flow as a run of its own (mode ``retry``, locked and
logged as a retry run): read by key from the source, mapped, validated and
written, even when its payload equals the one last written (the target no
longer holds it). A failure becomes a dead letter as in any run.
"""

from __future__ import annotations

__all__ = ["resync_record"]

from crm2erp.engine import Engine, RunResult
from crm2erp.errors import ConfigError, Crm2ErpError


def resync_record(project, store, flow_name: str, source_key: str) -> RunResult:
    """Run the record ``source_key`` of ``flow_name``'s source through the flow.

    Raises :class:`ConfigError` when the source cannot look records up by key or
    no longer has the record (nothing is written then)."""
    with Engine(project, store) as engine:
        runner = engine.runner(flow_name)
        stream = runner.flow.source.stream
        try:
            found = runner.source.lookup(stream, [source_key])
        except NotImplementedError:
            raise ConfigError(f"flow {flow_name!r}: its source {runner.source_system!r} "
                              "cannot read one record by key; run the flow with "
                              "--full-refresh instead") from None
        except Crm2ErpError as exc:
            raise ConfigError(f"flow {flow_name!r}: reading {source_key!r} from "
                              f"{runner.source_system!r} failed: {exc}") from None
        if source_key not in found:
            raise ConfigError(f"flow {flow_name!r}: {runner.source_system!r} has no record "
                              f"{source_key!r} in {stream!r} (deleted there?); nothing "
                              "was written")
        return runner.rerun([found[source_key]], force=True)

"""Dead-lettered records run again: read anew from the source, through the flow.

:func:`replay` is what ``crm2erp dlq retry`` runs: a locked, logged ``retry`` run
(:meth:`FlowRunner.rerun`) of the records' current source rows, their deletes
applied again and the dead letters of keys the source no longer has closed.
"""

from __future__ import annotations

__all__ = ["replay", "reread"]

import logging

from crm2erp.contract import Row
from crm2erp.engine.batch import RunResult
from crm2erp.engine.runner import FlowRunner
from crm2erp.errors import Crm2ErpError

log = logging.getLogger(__name__)


def replay(runner: FlowRunner, dead_letters) -> RunResult:
    """Run dead-lettered records of one flow again (after a mapping fix, say)."""
    deletes = [dl.source_key for dl in dead_letters if dl.stage == "delete"]
    rows, gone = reread(runner, [dl for dl in dead_letters if dl.stage != "delete"])
    return runner.rerun(rows, deleted_keys=deletes, closed_keys=gone)


def reread(runner: FlowRunner, letters) -> tuple[list[Row], list[str]]:
    """The current source rows of dead-lettered records, and the keys now gone.

    A retry loads what the source holds today, not the copy stored when the
    record failed. A key the source no longer has was deleted there: its dead
    letter is closed instead of bringing the record back (the target is not
    touched: the source's delete reaches it through the flow's delete policy).
    A source that cannot look records up by key replays the stored copies (warned).
    """
    stored = [dl for dl in letters if dl.stage == "read"]   # unreadable: as stored
    letters = [dl for dl in letters if dl.stage != "read"]
    if letters and runner.source_stream.identity == runner.source_stream.key:
        try:
            current = runner.source.lookup(runner.flow.source.stream,
                                           [dl.source_key for dl in letters])
        except (NotImplementedError, Crm2ErpError) as exc:
            log.warning("flow %s: cannot re-read dead letters from %r (%s); replaying "
                        "the stored copies", runner.flow.flow, runner.source_system, exc)
        else:
            rows = [current[dl.source_key] for dl in letters if dl.source_key in current]
            gone = [dl.source_key for dl in letters if dl.source_key not in current]
            for key in gone:
                log.warning("flow %s: %s is no longer in %r; its dead letter is closed",
                            runner.flow.flow, key, runner.source_system)
            return [dl.payload for dl in stored] + rows, gone
    elif letters:
        log.warning("flow %s: %r identifies records by another field than its key; "
                    "replaying the stored copies", runner.flow.flow, runner.source_system)
    letters = stored + letters
    return [dl.payload for dl in letters], []

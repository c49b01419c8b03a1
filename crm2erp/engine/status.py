"""A run's status: one rule for every mode (plain, ``--since``, ``--full-refresh``,
``dlq retry``), and the dry run's own words for it.

* ``failed``: an error stopped the run (a system or the state store unreachable,
  credentials refused, a bug);
* ``stopped``: a quality gate stopped it (too many rows fail critical rules);
* ``partial``: it finished, but records it read or retried went to the dead
  letters (parked ones included). Dead letters of earlier runs that this run
  did not touch do not count, and a record that fails again counts again;
* ``succeeded``: it finished and every record it read went through.
"""

from __future__ import annotations

__all__ = ["SUCCEEDED", "PARTIAL", "FAILED", "STOPPED", "held_back", "run_status",
           "shown_status", "run_warnings"]

import logging
from collections.abc import Mapping

from crm2erp.errors import QualityGateError

SUCCEEDED, PARTIAL, FAILED, STOPPED = "succeeded", "partial", "failed", "stopped"
_DRY_RUN_WORDS = {SUCCEEDED: "would succeed", PARTIAL: "would dead-letter"}


def held_back(counts: Mapping[str, int]) -> int:
    """How many records of the run went to the dead letters (failed or parked)."""
    return counts.get("failed", 0) + counts.get("parked", 0)


def run_status(counts: Mapping[str, int], error: BaseException | None = None) -> str:
    """The status of a run with these ``counts``, stopped by ``error`` if not None."""
    if error is not None:
        return STOPPED if isinstance(error, QualityGateError) else FAILED
    return PARTIAL if held_back(counts) else SUCCEEDED


def shown_status(status: str, mode: str) -> str:
    """``status`` as the user reads it: a dry run records nothing, so it says what
    would happen ("would dead-letter")."""
    return _DRY_RUN_WORDS.get(status, status) if mode == "dry_run" else status


def run_warnings(runner, result) -> list[str]:
    """The run's warnings: what the source and target systems warned about (SAP's
    ``sap-message``), and ``from:`` paths no record of the run had (their targets
    were left as they were)."""
    for connector in dict.fromkeys((runner.source, runner.target)):
        result.warnings.extend(f"{connector.name}: {text}"
                               for text in dict.fromkeys(connector.take_warnings()))
    for mapping in (runner.inbound, runner.outbound):
        for path in mapping.absent_sources():
            result.warnings.append(
                f"mapping {mapping.name!r}: no record had the field {path!r} named by "
                "'from:'; its target was left unchanged (a typo, or the source no longer "
                "sends it?)")
    for warning in result.warnings:
        logging.getLogger("crm2erp.engine.runner").warning("flow %s: %s",
                                                           runner.flow.flow, warning)
    return result.warnings

"""The exit codes of every ``crm2erp`` command: one meaning each, in one table.

docs/cli.md prints :data:`TABLE`; the commands take their codes from here, a
finished run's from its status (:func:`for_status`), an error's from its class
(:func:`for_error`).
"""

from __future__ import annotations

__all__ = ["EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE", "EXIT_NOT_RUN", "EXIT_QUALITY_GATE",
           "TABLE", "for_status", "for_error"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_NOT_RUN, EXIT_QUALITY_GATE = 0, 1, 2, 3, 4

TABLE = (
    (EXIT_OK, "Everything that was asked went through (run status `succeeded`)."),
    (EXIT_PROBLEMS, "The command finished, but some records did not go through: records "
     "this run read or retried are in the dead letters (status `partial`; older dead "
     "letters do not count; a dry run: they would be), `reconcile` found differences, "
     "`quality run` found rows failing critical rules."),
    (EXIT_USAGE, "Usage or configuration error: a wrong option, a problem in the YAML, no "
     "project, `check` found a connection that does not work. Nothing ran."),
    (EXIT_NOT_RUN, "Could not run or did not finish (status `failed`): the flow is locked by "
     "a live run (try again later), a system or the state store is unreachable, or an "
     "error stopped the run."),
    (EXIT_QUALITY_GATE, "A quality gate stopped the run (status `stopped`): more rows fail "
     "critical rules than the flow's `quality.threshold` allows; `quality run` exits 4 when "
     "a run over the same rows would stop."),
)

_BY_STATUS = {"succeeded": EXIT_OK, "partial": EXIT_PROBLEMS, "failed": EXIT_NOT_RUN,
              "stopped": EXIT_QUALITY_GATE}


def for_status(statuses) -> int:
    """The exit code of runs with these statuses: the worst one's."""
    codes = [_BY_STATUS[s] for s in statuses]
    order = (EXIT_OK, EXIT_PROBLEMS, EXIT_NOT_RUN, EXIT_QUALITY_GATE)
    return max(codes, key=order.index, default=EXIT_OK)


def for_error(exc: BaseException) -> int:
    """The exit code of a command that ``exc`` stopped."""
    from crm2erp.errors import ConfigError

    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    from crm2erp.engine.status import STOPPED, run_status

    return EXIT_QUALITY_GATE if run_status({}, exc) == STOPPED else EXIT_NOT_RUN

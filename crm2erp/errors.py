"""The error hierarchy, named by the action each error calls for.

Every error crm2erp raises on purpose derives from :class:`Crm2ErpError`.
Beneath it, the four actions a caller can take:

* :class:`RetriableError` - try again later (timeouts, 429, 5xx, lock held);
* :class:`FatalError` - stop the run; retrying will not help (auth refused,
  API quota exhausted for the day, target schema missing);
* :class:`RecordError` - this one record cannot go through; put it in the
  dead letters with the reason and carry on with the rest of the batch;
* :class:`ConfigError` - the user's YAML or settings are wrong; nothing ran.

Messages name the object at fault and the fix; secrets never appear in them
(see :func:`crm2erp.redact.redact`).
"""

from __future__ import annotations

__all__ = [
    "Crm2ErpError",
    "RetriableError",
    "FatalError",
    "BudgetExhaustedError",
    "RecordError",
    "ParentMissingError",
    "ConfigError",
    "ConfigIssue",
    "LockHeldError",
]

from dataclasses import dataclass


class Crm2ErpError(Exception):
    """Root of every error crm2erp raises on purpose."""


class RetriableError(Crm2ErpError):
    """A transient failure: the same call may succeed later.

    ``retry_after`` (seconds) is set when the remote system said how long to wait.
    """

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class LockHeldError(RetriableError):
    """Another run of the same flow holds the flow's lock."""


class FatalError(Crm2ErpError):
    """A failure that stops the run; retrying the same call will not help."""


class BudgetExhaustedError(FatalError):
    """A usage budget of the remote system (its daily API quota) is used up.

    The run stops with its watermark at the last committed batch; the next run
    resumes there. Under Airflow the task ends as skipped, not failed.
    """


class RecordError(Crm2ErpError):
    """One record cannot be processed; it goes to the dead letters.

    ``stage`` names where it failed (``map``, ``validate``, ``write``...), and
    ``field`` the field at fault when known.
    """

    def __init__(self, message: str, *, stage: str = "map", field: str | None = None):
        super().__init__(message)
        self.stage = stage
        self.field = field


class ParentMissingError(RecordError):
    """The record's parent is not in the target yet: park it and retry later."""

    def __init__(self, message: str, *, entity: str, key: str, field: str | None = None):
        super().__init__(message, stage="parked", field=field)
        self.entity = entity
        self.key = key


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file, with its position (1-based)."""

    file: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class ConfigError(Crm2ErpError):
    """The configuration is wrong; ``issues`` lists every problem found."""

    def __init__(self, message: str, issues: list[ConfigIssue] | None = None):
        self.issues = list(issues or [])
        if self.issues:
            message = message + "\n" + "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(message)

"""The error hierarchy, named by the action each error calls for.

Every error crm2erp raises on purpose derives from :class:`Crm2ErpError`.
Beneath it, the four actions a caller can take, and every error under them
(those defined outside this module name their module)::

    Crm2ErpError
    ├── RetriableError        try again later: timeouts, 429, 5xx, dropped connections
    │   └── LockHeldError     another live run of the flow holds its lock (CLI exit 75)
    ├── FatalError            stop the run; retrying will not help: auth refused,
    │   │                     API quota exhausted for the day, target schema missing
    │   ├── QualityGateError  critical quality failures above the flow's threshold
    │   └── OdooRecordError   Odoo refused a call's data (crm2erp.connectors.odoo.rpc);
    │                         the writer dead-letters the records at fault
    ├── RecordError           this one record cannot go through: dead-letter it with
    │   │                     the reason (``stage``, ``field``) and carry on
    │   ├── ParentMissingError  its parent is not in the target yet: park it, retry later
    │   ├── TrytonUserError   Tryton refused a write (crm2erp.connectors.tryton.client)
    │   └── TrytonServerError Tryton failed unexpectedly on a write (same module)
    └── ConfigError           the user's YAML or settings are wrong; nothing ran
                              (``issues``: every problem with file:line:column; exit 2)

:class:`ConfigIssue` is not an error: one problem of a :class:`ConfigError`.
Messages name the object at fault and the fix; secrets never appear in them
(see :func:`crm2erp.redact.redact`). ``tests/test_architecture.py`` checks
that every subclass appears in this tree.
"""

from __future__ import annotations

__all__ = [
    "Crm2ErpError",
    "RetriableError",
    "FatalError",
    "QualityGateError",
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


class QualityGateError(FatalError):
    """Critical quality failures exceeded the flow's threshold.

    Raised by the quality stage before the batch is written, so nothing of
    it reaches the target; the run ends ``failed`` and the report says why.
    """

    def __init__(self, message: str, *, flow: str, share: float, threshold: float):
        super().__init__(message)
        self.flow = flow
        self.share = share
        self.threshold = threshold


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

"""What every log line of a run carries: the flow, run id, batch and partition.

The engine sets them (:func:`run_context` around a run, :func:`next_batch` per
batch) in context variables; :class:`JsonLogFormatter` (``crm2erp --log-format
json``) writes them into each line. Nothing heavy is imported here: the CLI
loads this module before it knows which command runs.
"""

from __future__ import annotations

__all__ = ["run_context", "next_batch", "current", "JsonLogFormatter"]

import datetime as dt
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_FIELDS = ("flow", "run_id", "batch", "partition")
_context: ContextVar[dict | None] = ContextVar("crm2erp_log_context", default=None)


@contextmanager
def run_context(flow: str, run_id: int | None, partition: int | None) -> Iterator[None]:
    """Log lines inside the with-block name this run (batch 0 until the first batch)."""
    token = _context.set({"flow": flow, "run_id": run_id, "batch": 0,
                          "partition": partition})
    try:
        yield
    finally:
        _context.reset(token)


def next_batch() -> None:
    """The run moves on to its next batch (numbered from 1)."""
    values = _context.get()
    if values is not None:
        _context.set({**values, "batch": values["batch"] + 1})


def current() -> dict:
    """The run's fields for a log line: each is None outside a run."""
    values = _context.get() or {}
    return {name: values.get(name) for name in _FIELDS}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, the run's fields, and ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                    timespec="milliseconds"),
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage(), **current()}
        if record.exc_info or record.exc_text:   # exc_text: as a filter redacted it
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)

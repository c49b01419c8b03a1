"""Run ``crm2erp ARGS`` inside the test process, as a child process would see it.

``run(args, cwd=..., env=..., input=...)`` calls :func:`crm2erp.cli.app.main` with
the working folder ``cwd``, exactly the environment ``env`` (``os.environ`` when
None, as :func:`subprocess.run`), ``input`` as stdin, and stdout and stderr
captured; it returns a :class:`subprocess.CompletedProcess` (``returncode``,
``stdout``, ``stderr``), so a test written against ``python -m crm2erp`` changes
its helper only. Starting no interpreter saves the seconds each process spends
importing the engine, the connectors and their plug-ins.

Invariant: what one command changes in the process is undone when it returns,
so no run sees another's state: the working folder, every environment variable,
the standard streams, the root logger's handlers and level and every logger's
level (``-v``, ``--log-format json``, GX's loggers), ``logging.captureWarnings``,
the warning filters, ``sys.excepthook`` (typer installs its own) and the width
of the CLI's consoles. A pipe is not a terminal: the consoles get ``COLUMNS``
when ``env`` has it, else the width a child process gets in a pipe.

Tests of the process itself keep a real process: killing it, servers it starts,
what a fresh interpreter has imported, the installed console script.
"""

from __future__ import annotations

__all__ = ["run"]

import io
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path


def run(args: Sequence[str], *, cwd: str | Path, env: Mapping[str, str] | None = None,
        input: str | None = None) -> subprocess.CompletedProcess:
    """``crm2erp *args`` run in this process: its exit code and what it printed."""
    from crm2erp.cli import output
    from crm2erp.cli.app import main

    argv = [str(arg) for arg in args]
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    saved_hook = sys.excepthook
    root = logging.getLogger()
    saved_handlers, saved_root_level = root.handlers[:], root.level
    saved_levels = {name: logger.level for name, logger in
                    logging.Logger.manager.loggerDict.items()
                    if isinstance(logger, logging.Logger)}
    saved_capture = logging._warnings_showwarning is not None  # type: ignore[attr-defined]
    consoles = (output.console, output.err_console)
    saved_widths = [c._width for c in consoles]
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        columns = os.environ.get("COLUMNS", "")
        for c in consoles:   # as output._width() decides it for a pipe
            c.width = int(columns) if columns.isdigit() else output._PIPE_WIDTH
        os.chdir(cwd)
        sys.stdin, sys.stdout, sys.stderr = io.StringIO(input or ""), stdout, stderr
        with warnings.catch_warnings():
            code = main(argv)
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        sys.excepthook = saved_hook
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for c, width in zip(consoles, saved_widths, strict=True):
            c._width = width
        for handler in root.handlers:
            if handler not in saved_handlers:
                handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_root_level)
        for name, level in saved_levels.items():
            logger = logging.getLogger(name)
            if logger.level != level:
                logger.setLevel(level)
        logging.captureWarnings(saved_capture)
    return subprocess.CompletedProcess(["crm2erp", *argv], code, stdout.getvalue(),
                                       stderr.getvalue())

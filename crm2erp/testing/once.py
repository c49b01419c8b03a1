"""Build an expensive test fixture once per test run, shared by pytest-xdist workers.

A migrated Airflow metadata database or a Tryton database ready to invoice
takes tens of seconds to make. Each xdist worker is a process with its own
session fixtures, so without help every worker would build its own copy at
the same time. :func:`build_once` lets the first worker build it under a file
lock while the others wait, then every worker copies what it needs from it.
"""

from __future__ import annotations

__all__ = ["run_folder", "build_once"]

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every xdist worker of this test run shares (the session's own
    base folder without xdist); pytest removes it with its other old temp folders."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(folder: Path, key: str, build: Callable[[Path], None]) -> Path:
    """``folder`` holding what ``build(folder)`` made for ``key`` (a hash of what the
    build depends on). The first caller builds it while holding a lock, the others
    wait for it; a folder already built for the same ``key`` is reused as it is
    (so a persistent folder carries over to later runs while the key stays)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{folder}.lock"):
        stamp = folder / ".built-for"
        if stamp.is_file() and stamp.read_text() == key:
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        build(folder)
        stamp.write_text(key)
    return folder

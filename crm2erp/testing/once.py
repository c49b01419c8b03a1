"""Build an expensive test fixture once per test run, shared by pytest-xdist workers.

A migrated Airflow metadata database or a Tryton database ready to invoice
takes tens of seconds to make. Each xdist worker is a process with its own
session fixtures, so without help every worker would build its own copy at
the same time. :func:`build_once` lets the first worker build it under a file
lock while the others wait, then every worker copies what it needs from it.
In a :func:`kept_folder` named by :func:`installed_key` it is built once per
machine and set of installed packages, and later test runs reuse it.
"""

from __future__ import annotations

__all__ = ["run_folder", "build_once", "kept_folder", "installed_key"]

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from importlib.metadata import distributions
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


CACHE_ENV = "CRM2ERP_TEST_CACHE"


def kept_folder(name: str, key: str) -> Path:
    """A folder for :func:`build_once` that later test runs on this machine reuse while
    ``key`` stays: ``<cache>/<name>-<key>`` in ``$CRM2ERP_TEST_CACHE``, else
    ``$XDG_CACHE_HOME/crm2erp-tests``, else ``~/.cache/crm2erp-tests``.

    The key is in the name, so runs of checkouts with other packages or scripts keep
    their own folders side by side: none deletes a folder another run may be copying."""
    if os.environ.get(CACHE_ENV):
        base = Path(os.environ[CACHE_ENV]).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crm2erp-tests"
    return base / f"{name}-{key[:24]}"


def installed_key(*depends_on: str) -> str:
    """A hash of what a kept build depends on beyond ``depends_on`` (a script's text, a
    date): the Python version and every installed distribution's name and version
    (each once: a checkout's ``*.egg-info`` is found too when the working folder is
    on ``sys.path``, as with ``python -m pytest``)."""
    installed = sorted({f"{d.metadata['Name']}=={d.version}" for d in distributions()})
    return hashlib.sha256("\n".join([sys.version, *installed, *depends_on]).encode()).hexdigest()

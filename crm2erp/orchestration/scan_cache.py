"""The project scan, kept between DAG-processor passes while no file changed.

Airflow parses a DAG file in a fresh process on every pass, so the scan of
the projects (YAML parsing, validation, pydantic models: most of a parse's
cost) is kept twice:

* in this process, for the second DAG file of the same pass;
* on disk, as a pickle in a folder only this user may write
  (``$CRM2ERP_CACHE_DIR``, else ``$XDG_CACHE_HOME/crm2erp``, else
  ``~/.cache/crm2erp``; Jinja2's bytecode cache takes the same care).

A kept scan is used while every YAML file under the project folders (and
every mapping a flow uses, even outside them) has the same mtime and size,
and every environment variable the files name (``${NAME}``) has the same
value. A cache folder that cannot be used costs only speed: it is logged,
and the scan runs every time.
"""

from __future__ import annotations

__all__ = ["CACHE_DIR_ENV", "cache_dir", "fingerprint", "cached_scan", "keep_scan",
           "clear_memory"]

import hashlib
import logging
import os
import pickle
import re
import stat
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import crm2erp

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "CRM2ERP_CACHE_DIR"
_VARIABLE_RX = re.compile(rb"\$\{([A-Za-z_][A-Za-z0-9_]*)")

# project folders -> (fingerprint, scan result)
_MEMORY: dict[tuple[str, ...], tuple[Any, Any]] = {}


def clear_memory() -> None:
    """Forget the scans kept in this process (the disk copies stay)."""
    _MEMORY.clear()


def cache_dir() -> Path:
    """The folder of the kept scans (not created here)."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "crm2erp"


def _yaml_files(roots: tuple[str, ...], extra: Iterable[Path]) -> list[Path]:
    files: set[Path] = set(extra)
    for root in map(Path, roots):
        if root.is_dir():
            files.update(p for pattern in ("*.yaml", "*.yml") for p in root.rglob(pattern))
    return sorted(files)


def fingerprint(roots: tuple[str, ...], mappings: Iterable[Path] = ()) -> tuple:
    """The files a scan depends on: each YAML file by path, mtime and size."""
    stamps = []
    for path in _yaml_files(roots, mappings):
        try:
            info = path.stat()
        except OSError:
            stamps.append((str(path), None, None))
        else:
            stamps.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(stamps)


def _variables(files: Iterable[str]) -> tuple[tuple[str, str | None], ...]:
    names: set[str] = set()
    for name in files:
        try:
            names.update(n.decode() for n in _VARIABLE_RX.findall(Path(name).read_bytes()))
        except OSError:
            continue
    return tuple((n, os.environ.get(n)) for n in sorted(names))


def _environment(variables: tuple[tuple[str, str | None], ...]) -> tuple:
    return tuple((name, os.environ.get(name)) for name, _ in variables)


def _disk_file(roots: tuple[str, ...]) -> Path:
    key = "\0".join((crm2erp.__version__, sys.version, *roots)).encode()
    return cache_dir() / f"scan-{hashlib.sha256(key).hexdigest()[:24]}.pickle"


def _private_folder(folder: Path) -> bool:
    """The folder exists (made if missing), belongs to this user and only they may write it."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError as exc:
        log.info("no scan cache in %s (%s): every parse scans the projects", folder, exc)
        return False
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        log.warning("no scan cache: %s is not this user's private folder (owner uid %d, "
                    "mode %o); set %s to one", folder, info.st_uid,
                    stat.S_IMODE(info.st_mode), CACHE_DIR_ENV)
        return False
    return True


def cached_scan(roots: tuple[str, ...], mappings_of) -> Any | None:
    """The kept scan of ``roots`` if nothing it depends on changed, else None.

    ``mappings_of(result)`` lists the mapping files a kept result's flows use."""
    kept = _MEMORY.get(roots)
    if kept is None:
        kept = _load(roots)
    if kept is None:
        return None
    (stamps, variables), result = kept
    if stamps != fingerprint(roots, mappings_of(result)) or \
            variables != _environment(variables):
        return None
    _MEMORY[roots] = kept
    return result


def _load(roots: tuple[str, ...]) -> tuple[Any, Any] | None:
    path = _disk_file(roots)
    if not path.is_file() or not _private_folder(path.parent):
        return None
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)  # noqa: S301 - our own file in a private folder
    except Exception as exc:  # a torn or stale file: scan again
        log.info("scan cache %s unusable (%s); scanning again", path, exc)
        return None


def keep_scan(roots: tuple[str, ...], stamps: tuple, result: Any) -> None:
    """Keep ``result`` (scanned while the files had ``stamps``) here and on disk."""
    kept = ((stamps, _variables(name for name, _, _ in stamps)), result)
    _MEMORY[roots] = kept
    path = _disk_file(roots)
    if not _private_folder(path.parent):
        return
    try:
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False,
                                         prefix=path.name, suffix=".tmp") as handle:
            pickle.dump(kept, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(handle.name, path)
    except (OSError, pickle.PicklingError) as exc:
        log.info("scan cache %s not written (%s)", path, exc)

"""Plug-ins, found by entry point: connectors, batch stages, run hooks and emulators.

The core never imports ``crm2erp.connectors`` or ``crm2erp.quality``; what
they provide is declared in a package's metadata and loaded here by name.
crm2erp declares its own in ``setup.cfg``; a third-party package adds one
the same way::

    [options.entry_points]
    crm2erp.connectors =
        mycrm = mypackage.connector:MyCrmConnector
    crm2erp.stages =
        mygate = mypackage.gate:gate_stage
    crm2erp.hooks =
        myaudit = mypackage.audit:after_run
    crm2erp.emulators =
        mycrm = mypackage.emulator:main

=================== ==================================================================
group               what the entry point names
=================== ==================================================================
crm2erp.connectors  a :class:`~crm2erp.contract.Connector` subclass
crm2erp.stages      ``factory(flow, store) -> BatchStage | None``, with an optional
                    ``order`` attribute (stages run in ascending ``order``, then name)
crm2erp.hooks       ``hook(runner, result)``, called after every run is closed
crm2erp.emulators   ``main(argv) -> int | None``, the emulator's command line
=================== ==================================================================
"""

from __future__ import annotations

__all__ = [
    "CONNECTORS",
    "STAGES",
    "HOOKS",
    "EMULATORS",
    "available",
    "load",
    "load_all",
    "load_connector_class",
    "create_connector",
]

import functools
import os
import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from crm2erp.contract import Connector
from crm2erp.errors import ConfigError

CONNECTORS = "crm2erp.connectors"
STAGES = "crm2erp.stages"
HOOKS = "crm2erp.hooks"
EMULATORS = "crm2erp.emulators"

_WHAT = {CONNECTORS: "connector type", STAGES: "stage", HOOKS: "run hook",
         EMULATORS: "emulator"}


def _entries(group: str) -> dict[str, EntryPoint]:
    """The entry points of ``group``, name -> entry point. Reading every installed
    distribution's metadata costs tens of milliseconds where hundreds are installed
    (an Airflow environment), and a run asks several times: the answer is kept
    while ``sys.path`` and its folders are unchanged (an install or uninstall
    changes its folder's modification time, so it is seen at the next look-up)."""
    return dict(_scan(group, _search_path()))


def _search_path() -> tuple[tuple[str, int], ...]:
    """Each folder of ``sys.path`` (``""``: the current one) with its modification time."""
    def stamp(folder: str) -> int:
        try:
            return os.stat(folder).st_mtime_ns
        except OSError:
            return -1
    folders = [folder or os.getcwd() for folder in sys.path]
    return tuple((folder, stamp(folder)) for folder in folders)


@functools.lru_cache(maxsize=32)
def _scan(group: str, search_path: tuple[tuple[str, int], ...]) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)   # the first distribution to declare a name wins
    return found


def available(group: str = CONNECTORS) -> dict[str, str]:
    """Name -> ``module:attribute`` of everything registered in ``group``."""
    return {name: ep.value for name, ep in sorted(_entries(group).items())}


def load(group: str, name: str) -> Any:
    """The object ``name`` registers in ``group``; ConfigError naming the known ones."""
    entry = _entries(group).get(name)
    if entry is None:
        known = ", ".join(sorted(_entries(group))) or "none installed"
        raise ConfigError(f"unknown {_WHAT.get(group, group)} {name!r} (known: {known}); "
                          "is the package that provides it installed?")
    return entry.load()


def load_all(group: str) -> list[tuple[str, Any]]:
    """Every ``(name, object)`` of ``group``, in ascending ``order`` attribute, then name."""
    loaded = [(name, ep.load()) for name, ep in _entries(group).items()]
    return sorted(loaded, key=lambda pair: (getattr(pair[1], "order", 100), pair[0]))


def load_connector_class(type_name: str) -> type[Connector]:
    cls = load(CONNECTORS, type_name)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigError(f"connector type {type_name!r} names {cls!r}, "
                          "not a crm2erp.contract.Connector subclass")
    return cls


def create_connector(type_name: str, settings: dict[str, Any], *,
                     where: str = "connection") -> Connector:
    """Build a connector from its type name and raw settings, validating them."""
    cls = load_connector_class(type_name)
    try:
        config = cls.Config.model_validate(settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{where} (type {type_name}): {problems}") from None
    return cls(config)

"""YAML mapping and flow packs, shipped as package data (``crm2erp.mappings``).

This folder is data, not code; the ``__init__`` only makes it locatable with
:mod:`importlib.resources` once installed, e.g. ``pack_dir("demo")``.
"""

from __future__ import annotations

__all__ = ["pack_dir"]

from importlib.resources import files
from pathlib import Path


def pack_dir(name: str) -> Path:
    """The folder of a shipped pack (``demo``, ``salesforce``...)."""
    path = Path(str(files(__name__) / name))
    if not path.is_dir():
        from crm2erp.errors import ConfigError

        raise ConfigError(f"no shipped mapping pack {name!r} in {path.parent}")
    return path

"""Install a plug-in for the length of a test: a module and its entry points.

It writes ``<folder>/<module>.py`` and a ``<module>-0.dist-info`` declaring the
entry points, and puts ``folder`` on ``sys.path``, so :mod:`crm2erp.registry`
finds the plug-in exactly as it finds an installed package's.
"""

from __future__ import annotations

__all__ = ["install_plugin"]

import sys
from collections.abc import Mapping
from pathlib import Path


def install_plugin(folder: Path, module: str, source: str,
                   entry_points: Mapping[str, Mapping[str, str]], monkeypatch) -> None:
    """``entry_points`` is group -> name -> attribute of ``module`` (``{"crm2erp.stages":
    {"gate": "factory"}}``); ``monkeypatch`` undoes ``sys.path`` and the import."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(source, encoding="utf-8")
    info = folder / f"{module}-0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0\n",
                                   encoding="utf-8")
    lines = []
    for group, names in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {module}:{attr}" for name, attr in names.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, module, raising=False)

"""Where reports go: ``$CRM2ERP_REPORTS_DIR``, else ``reports/`` next to the state store.

"Next to the state store" exists only for a SQLite file; with a PostgreSQL
or MariaDB store (or an in-memory SQLite one) reports are written only when
``CRM2ERP_REPORTS_DIR`` names a folder. ``CRM2ERP_REPORTS_DIR=off`` turns them off.
"""

from __future__ import annotations

__all__ = ["reports_dir", "ENV_REPORTS"]

import os
from pathlib import Path

ENV_REPORTS = "CRM2ERP_REPORTS_DIR"
_OFF = {"off", "none", "no", "false", "0", ""}


def reports_dir(store) -> Path | None:
    """The reports folder for ``store``, or None when reports are off."""
    configured = os.environ.get(ENV_REPORTS)
    if configured is not None:
        return None if configured.strip().lower() in _OFF else Path(configured).resolve()
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).resolve().parent / "reports"
    return None


"""A finished demo run, built once per xdist worker and copied for each test.

``run_demo`` costs seconds (six flows, the quality gate, the reports) and many
tests only need the state it leaves. :class:`DemoCopies` runs the demo once per
worker for each sample size and gives every test a copy of that folder: the
same three databases, reports and project, byte for byte, except the two lines
that name the folder (the project's ``connections.yaml`` and ``crm2erp.yaml``),
which name the copy. ``CRM2ERP_DEMO_DIR`` is set to the copy, as ``run_demo``
sets it. With ``CRM2ERP_REPORTS_DIR`` set the reports leave the folder, so
the demo then simply runs in place, as before.
"""

from __future__ import annotations

__all__ = ["DemoCopies"]

import copy
import datetime as dt
import os
import shutil
from pathlib import Path

from crm2erp.demo import DemoResult, run_demo
from crm2erp.mapping.loader import CONNECTIONS_FILE, PROJECT_FILE


class DemoCopies:
    """``copies(folder, accounts=120)``: what ``run_demo(folder, accounts=...)``
    returns and leaves on disk, from a copy of this worker's own demo run."""

    def __init__(self, builds: Path):
        self.builds = builds
        self.built: dict[tuple[int, dt.date], DemoResult] = {}

    def __call__(self, folder: Path, accounts: int = 120) -> DemoResult:
        if os.environ.get("CRM2ERP_REPORTS_DIR"):
            return run_demo(folder, accounts=accounts)
        key = (accounts, dt.date.today())   # the demo bills and dates with today
        if key not in self.built:
            self.built[key] = run_demo(self.builds / f"{accounts}-{key[1]}", accounts=accounts)
        return self._copy(self.built[key], Path(folder).resolve())

    @staticmethod
    def _copy(built: DemoResult, folder: Path) -> DemoResult:
        shutil.copytree(built.directory, folder, dirs_exist_ok=True)
        project = folder / "project"
        for name in (CONNECTIONS_FILE, PROJECT_FILE):
            path = project / name
            path.write_text(path.read_text().replace(str(built.directory), str(folder)))
        os.environ["CRM2ERP_DEMO_DIR"] = str(folder)
        return DemoResult(folder, built.first_run, copy.deepcopy(built.results),
                          built.invoices_billed, f"sqlite:///{folder / 'state.db'}", project)

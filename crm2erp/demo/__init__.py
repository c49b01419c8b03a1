"""``crm2erp demo``: a CRM and an ERP in two SQLite files, synced both ways.

The first run creates the sample systems, syncs accounts, contacts and won
deals into the ERP, lets the ERP bill the new orders, and brings the invoices
back to the CRM. Every later run syncs again and, with nothing changed in
either system, changes nothing.
"""

from __future__ import annotations

__all__ = ["DemoResult", "run_demo", "write_project", "DEMO_FLOWS"]

import datetime as dt
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from crm2erp.demo.sample import sample_crm_rows
from crm2erp.demo.systems import bill_new_orders, create_systems
from crm2erp.engine import Engine, RunResult
from crm2erp.mapping import load_project
from crm2erp.mapping.loader import CONNECTIONS_FILE, PROJECT_FILE
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore

DEMO_FLOWS = ["demo_accounts", "demo_contacts", "demo_orders", "demo_invoices",
              "demo_order_status", "demo_balances"]


@dataclass
class DemoResult:
    directory: Path
    first_run: bool
    results: list[RunResult] = field(default_factory=list)
    invoices_billed: int = 0
    state_url: str = ""
    project: Path | None = None

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.results)


def write_project(directory: Path, state_db: Path, *, fresh: bool) -> Path:
    """The demo pack as a project of its own in ``directory/project``: its
    connections point at this folder's databases and its ``crm2erp.yaml`` at
    this folder's state store, so every command works on it with ``-p`` alone.
    Kept as it is between runs (a user may edit it) unless ``fresh``."""
    project = directory / "project"
    if project.is_dir() and not fresh:
        return project
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(pack_dir("demo"), project,
                    ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    connections = project / CONNECTIONS_FILE
    connections.write_text(connections.read_text().replace("${CRM2ERP_DEMO_DIR}",
                                                           str(directory)))
    (project / PROJECT_FILE).write_text(f"state: sqlite:///{state_db}\n")
    return project


def run_demo(directory: Path, *, accounts: int = 120, reset: bool = False,
             progress=None) -> DemoResult:
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    crm_db, erp_db, state_db = (directory / n for n in ("crm.db", "erp.db", "state.db"))
    if reset:
        for path in (crm_db, erp_db, state_db):
            path.unlink(missing_ok=True)
    first_run = not crm_db.exists()
    if first_run:
        for path in (erp_db, state_db):
            path.unlink(missing_ok=True)
        create_systems(f"sqlite:///{crm_db}", f"sqlite:///{erp_db}",
                       sample_crm_rows(accounts=accounts))
    os.environ["CRM2ERP_DEMO_DIR"] = str(directory)
    project = load_project(write_project(directory, state_db, fresh=reset or first_run))
    store = StateStore.open(f"sqlite:///{state_db}")
    outcome = DemoResult(directory, first_run, state_url=f"sqlite:///{state_db}",
                         project=project.root)
    try:
        with Engine(project, store) as engine:
            for name in DEMO_FLOWS:
                if name == "demo_invoices":
                    # the ERP's own billing run, between the order sync and the return flow
                    outcome.invoices_billed = bill_new_orders(
                        f"sqlite:///{erp_db}", dt.date.today())
                outcome.results.append(engine.run(name, progress=progress))
    finally:
        store.close()
    return outcome

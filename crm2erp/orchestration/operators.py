"""crm2erp inside your own DAGs: an operator for one sync, a TaskGroup for a flow.

``CrmToErpSyncOperator(task_id=..., flow="demo_accounts")`` runs one sync
(one partition with ``partition=``) like the generated DAGs' ``sync`` task,
with the same failure semantics and one small XCom (run id and counts).
``crm2erp_flow_group("demo_accounts")`` adds the flow's whole
``check_connections`` -> ``sync`` (per partition) -> ``report`` chain as a
TaskGroup, with the flow's ``timeout:`` and its asset. See docs/airflow.md.
"""

from __future__ import annotations

__all__ = ["find_flow", "CrmToErpSyncOperator", "crm2erp_flow_group"]

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, TaskGroup

from crm2erp.errors import ConfigError
from crm2erp.orchestration import tasks
from crm2erp.orchestration.factory import add_flow_tasks, flow_asset
from crm2erp.orchestration.projects import FlowEntry, project_dirs, scan_projects
from crm2erp.orchestration.retry import RetryAfterPolicy


def find_flow(flow: str, project: str | Path | None = None) -> FlowEntry:
    """The valid, enabled flow ``flow`` of ``project`` (else of ``$CRM2ERP_PROJECT``
    or the shipped packs); a ConfigError naming the folders and the broken files."""
    dirs = project_dirs(str(project) if project else None)
    scan = scan_projects(dirs)
    entry = scan.flows.get(flow)
    if entry is not None:
        return entry
    error = scan.error()
    raise ConfigError(f"no valid, enabled crm2erp flow {flow!r} in "
                      f"{', '.join(str(d) for d in dirs)}"
                      + (f"; {error}" if error else ""), error.issues if error else None)


class CrmToErpSyncOperator(BaseOperator):
    """Run one crm2erp flow (or one partition of it); returns run id and counts."""

    template_fields: Sequence[str] = ("flow", "project", "mode", "since")
    ui_color = "#d6eaf8"

    def __init__(self, *, flow: str, project: str | None = None, partition: int | None = None,
                 mode: str = "incremental", since: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("retry_policy", RetryAfterPolicy())
        super().__init__(**kwargs)
        self.flow, self.project, self.partition = flow, project, partition
        self.mode, self.since = mode, since

    def execute(self, context: Any) -> dict[str, Any]:
        with tasks.failure_semantics(f"flow {self.flow}"):
            root = find_flow(self.flow, self.project).root
        return tasks.sync(root, self.flow, self.partition, mode=self.mode, since=self.since)


def crm2erp_flow_group(flow: str, project: str | Path | None = None, *,
                       group_id: str | None = None, produce_asset: bool = True,
                       **kwargs: Any) -> TaskGroup:
    """A TaskGroup (``group_id`` defaults to the flow's name) running ``flow``:
    check_connections -> sync -> report. Call it inside a DAG definition; the
    flow's files are read now (parse time), no connection is opened."""
    entry = find_flow(flow, project)
    tooltip = entry.flow.description or f"crm2erp flow {flow}"
    with TaskGroup(group_id=group_id or flow, tooltip=tooltip, **kwargs) as group:
        add_flow_tasks(entry, flow_asset(flow) if produce_asset else None)
    return group

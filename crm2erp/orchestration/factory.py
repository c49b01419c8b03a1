"""Build one Airflow DAG per crm2erp flow (Airflow task SDK).

Each DAG is ``check_connections`` -> ``sync`` (fanned out over the flow's
partitions with ``.expand()``) -> ``report``, and ``report`` produces the
flow's asset ``crm2erp://flow/<name>``. A flow whose ``schedule`` names
assets, or that has ``depends_on`` and no schedule, runs when those flows have
produced. Building reads YAML only: no connection is opened at parse time.
"""

from __future__ import annotations

__all__ = [
    "START_DATE",
    "DEFAULT_ARGS",
    "flow_asset",
    "dag_schedule",
    "add_flow_tasks",
    "build_dag",
    "build_dags",
    "raise_config_errors",
]

import datetime as dt
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, dag, task

from crm2erp.mapping.models import FlowSpec, Schedule, parse_duration
from crm2erp.orchestration import tasks
from crm2erp.orchestration.projects import FlowEntry, scan_projects
from crm2erp.orchestration.retry import RetryAfterPolicy

START_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
DEFAULT_ARGS: dict[str, Any] = {
    "retries": 3,
    "retry_delay": dt.timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,  # 1, 2, 4 minutes...
    "max_retry_delay": dt.timedelta(minutes=30),
    "retry_policy": RetryAfterPolicy(),  # a 429's Retry-After sets the next delay
}


def flow_asset(name: str) -> Asset:
    """The asset a flow's DAG produces when its sync has finished."""
    uri = name if "://" in name else f"crm2erp://flow/{name}"
    return Asset(uri=uri, name=uri, group="crm2erp")


def dag_schedule(flow: FlowSpec) -> Any:
    """Airflow ``schedule`` of a flow: cron/preset, a duration, or parents' assets."""
    if isinstance(flow.schedule, Schedule):
        return [flow_asset(name) for name in flow.schedule.assets]
    if flow.schedule is None:
        return [flow_asset(name) for name in flow.depends_on] or None
    try:
        return parse_duration(flow.schedule)  # "30m" -> every 30 minutes
    except ValueError:
        return flow.schedule  # cron expression or preset such as "@hourly"


def _doc_md(entry: FlowEntry) -> str:
    flow = entry.flow
    lines = [f"## crm2erp flow `{flow.flow}`", "", flow.description or "(no description)", "",
             f"* {flow.entity}: `{flow.source.connection}.{flow.source.stream}` -> "
             f"`{flow.target.connection}.{flow.target.stream}`",
             f"* flow file: `{flow.source_file}`"]
    if flow.partitions:
        lines.append(f"* {flow.partitions.count} partitions: one `sync` task each")
    if flow.depends_on:
        lines.append(f"* depends on: {', '.join(flow.depends_on)}")
    lines += ["", "Trigger with config `{\"mode\": \"full_refresh\"}` to re-read everything, "
              "or `{\"mode\": \"since\", \"since\": \"2024-05-01\"}`. Dead letters do not "
              "fail the run; `report` counts them."]
    return "\n".join(lines)


def _mode(params: dict | None, dag_run: Any, interval_start: Any) -> tuple[str, str | None]:
    """The engine mode of this run (``params``: the run's config, ``{"mode": ...,
    "since": ...}``); a backfill run re-reads from its interval start."""
    params = params or {}
    mode, since = params.get("mode") or "incremental", params.get("since") or None
    run_type = getattr(dag_run, "run_type", None)
    run_type = str(getattr(run_type, "value", run_type) or "")
    if mode == "incremental" and run_type == "backfill" and interval_start:
        return "since", interval_start.isoformat()
    return mode, since


def add_flow_tasks(entry: FlowEntry, asset: Asset | None = None) -> tuple[Any, Any, Any]:
    """``check_connections`` -> ``sync`` (one per partition) -> ``report`` of one flow,
    added to the DAG or TaskGroup being defined; the three task references.
    ``report`` produces ``asset`` when given."""
    flow, root, name = entry.flow, str(entry.root), entry.name

    @task(task_id="check_connections")
    def check_connections() -> list[str]:
        return tasks.check_connections(root, name)

    # one XCom, not one per key; the flow's `timeout:` bounds one sync
    @task(task_id="sync", multiple_outputs=False, execution_timeout=flow.timeout)
    def sync(partition: int | None = None, dag_run=None,
             data_interval_start=None) -> dict[str, Any]:
        # the trigger's config, not DAG params: params cost half a DAG's parse time
        # (a JSON-schema check per DAG, a copy per task); the task checks the mode
        mode, since = _mode(getattr(dag_run, "conf", None), dag_run, data_interval_start)
        return tasks.sync(root, name, partition, mode=mode, since=since)

    @task(task_id="report", outlets=[asset] if asset is not None else [],
          multiple_outputs=False)
    def report(results, outlet_events=None) -> dict[str, Any]:
        summary = tasks.report(name, results)
        if asset is not None and outlet_events is not None:
            outlet_events[asset].extra = {"run_ids": summary["run_ids"],
                                          "counts": summary["counts"]}
        return summary

    checked = check_connections()
    if flow.partitions:
        synced = sync.expand(partition=list(range(flow.partitions.count)))
    else:
        synced = sync()
    checked >> synced
    return checked, synced, report(synced)


def build_dag(entry: FlowEntry, default_args: dict[str, Any] | None = None) -> DAG:
    """The DAG of one flow."""
    flow, name = entry.flow, entry.name
    args = {**DEFAULT_ARGS, "owner": flow.owner or "crm2erp", **(default_args or {})}

    @dag(dag_id=name, schedule=dag_schedule(flow), start_date=START_DATE, catchup=False,
         max_active_runs=1, tags=["crm2erp", *flow.tags], default_args=args,
         description=(flow.description or None), doc_md=_doc_md(entry))
    def flow_dag() -> None:
        add_flow_tasks(entry, flow_asset(name))

    return flow_dag()


def build_dags(dirs: list[Path] | None = None,
               default_args: dict[str, Any] | None = None) -> dict[str, DAG]:
    """A DAG for every valid, enabled flow of the projects (see
    :func:`~crm2erp.orchestration.projects.project_dirs`), keyed by DAG id.
    Broken files are left out; :func:`raise_config_errors` reports them."""
    return {name: build_dag(entry, default_args)
            for name, entry in scan_projects(dirs).flows.items()}


def raise_config_errors(dirs: list[Path] | None = None) -> None:
    """Raise one ConfigError naming every broken file and line, if there is any.

    Called from its own DAG file so Airflow lists the problems as an import
    error while the DAGs of the valid flows (another file) still load.
    """
    error = scan_projects(dirs).error()
    if error is not None:
        raise error

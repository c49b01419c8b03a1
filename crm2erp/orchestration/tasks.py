"""What the tasks of a flow's DAG do, as plain functions (testable without a DAG).

``check_connections`` -> ``sync`` (one per partition) -> ``report``. Only run
ids and counts travel between tasks (XCom); records never do: the engine
reads, checks, dedupes and loads them batch by batch inside ``sync`` and keeps
its state in the state store (``$CRM2ERP_STATE_URL`` or the Airflow Connection
``crm2erp_state``, see :func:`~crm2erp.orchestration.hooks.state_url`).

Failure semantics, so Airflow does the right thing:

* :class:`~crm2erp.errors.RetriableError` (timeouts, 429/5xx, a held lock)
  propagates: Airflow retries the task with exponential backoff, or after the
  server's ``Retry-After`` (:class:`~crm2erp.orchestration.retry.RetryAfterPolicy`);
* :class:`~crm2erp.errors.BudgetExhaustedError` (a daily API quota used up)
  becomes ``AirflowSkipException``: the task ends skipped, the watermark stays
  at the last committed batch and the next run resumes there;
* :class:`~crm2erp.errors.ConfigError` and :class:`~crm2erp.errors.FatalError`
  (bad YAML, refused credentials, a quality threshold breached) become
  ``AirflowFailException``: the task fails at once, without retries;
* records that cannot go through become dead letters: the task succeeds and
  ``report`` counts them.
"""

from __future__ import annotations

__all__ = ["failure_semantics", "check_connections", "airflow_lineage", "sync", "report"]

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from crm2erp.engine import Engine, parse_since
from crm2erp.errors import BudgetExhaustedError, ConfigError, FatalError, RetriableError
from crm2erp.orchestration.hooks import state_url
from crm2erp.orchestration.runtime import flow_connections, load_runtime_project
from crm2erp.redact import add_secret_listener, redact
from crm2erp.store import COUNT_FIELDS, StateStore

log = logging.getLogger(__name__)


def _airflow_mask(value: str) -> None:
    """Feed a crm2erp secret to Airflow's task-log masker (tracebacks included)."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # not inside Airflow
        return
    mask_secret(value)


add_secret_listener(_airflow_mask)


@contextmanager
def failure_semantics(what: str) -> Iterator[None]:
    """Map crm2erp's errors onto Airflow's retry / fail-now decisions."""
    try:
        yield
    except BudgetExhaustedError as exc:
        from airflow.sdk.exceptions import AirflowSkipException

        message = f"{what}: {redact(str(exc))}"
        log.warning("%s (skipped: the next run resumes from the kept watermark)", message)
        raise AirflowSkipException(message) from None
    except (ConfigError, FatalError) as exc:
        from airflow.sdk.exceptions import AirflowFailException

        message = f"{what}: {type(exc).__name__}: {redact(str(exc))}"
        log.error("%s (not retried: fix the cause, then clear the task)", message)
        raise AirflowFailException(message) from None
    except RetriableError as exc:
        hint = f" (the remote system asked to wait {exc.retry_after:.0f}s)" \
            if exc.retry_after else ""
        log.warning("%s: %s; Airflow will retry%s", what, redact(str(exc)), hint)
        raise


def check_connections(root: str | Path, flow: str) -> list[str]:
    """Build and check the connectors of ``flow``; the names checked."""
    with failure_semantics(f"flow {flow}: checking connections"):
        project = load_runtime_project(root, flow)
        with Engine(project, store=None) as engine:
            names = flow_connections(project, flow)
            for name in names:
                connector = engine.pool.get(name)
                connector.check()
                log.info("flow %s: connection %s (%s) is reachable", flow, name,
                         project.connections[name].type)
    return names


def airflow_lineage(project: Any) -> Any:
    """A :class:`~crm2erp.lineage.Lineage` on the Airflow OpenLineage provider's
    client and namespace; None (logged at debug level) when the provider is not
    installed or is disabled."""
    try:
        from airflow.providers.openlineage import conf
        from airflow.providers.openlineage.plugins.adapter import OpenLineageAdapter

        from crm2erp.lineage import Lineage
    except ImportError as exc:
        log.debug("no OpenLineage events: %s is not installed "
                  "(apache-airflow-providers-openlineage)", exc.name)
        return None
    if conf.is_disabled():
        log.debug("no OpenLineage events: OpenLineage is disabled in Airflow's configuration")
        return None
    client = OpenLineageAdapter().get_or_create_openlineage_client()
    return Lineage(client, project, namespace=conf.namespace())


def sync(root: str | Path, flow: str, partition: int | None = None, *,
         mode: str = "incremental", since: str | None = None) -> dict[str, Any]:
    """Run ``flow`` (one slice when ``partition`` is given); run id and counts."""
    label = f"flow {flow}" + ("" if partition is None else f" partition {partition}")
    with failure_semantics(label):
        if mode not in ("incremental", "full_refresh", "since"):
            raise ConfigError(f"unknown mode {mode!r} for {label}; use incremental, "
                              "full_refresh or since")
        cursor = parse_since(since) if since else None
        if mode == "since" and cursor is None:
            raise ConfigError(f"mode 'since' for {label} needs a 'since' date")
        project = load_runtime_project(root, flow)
        lineage = airflow_lineage(project)
        with (StateStore.open(state_url()) as store, Engine(project, store) as engine,
              lineage.track(flow, partition) if lineage else nullcontext({}) as tracked):
            result = tracked["result"] = engine.run(flow, mode=mode, since=cursor,
                                                    partition=partition)
    outcome = {"flow": flow, "run_id": result.run_id, "partition": result.partition,
               "status": result.status, "counts": dict(result.counts),
               "new_dead_letters": result.new_dead_letters}
    log.info("%s: run %s %s %s", label, result.run_id, result.status, dict(result.counts))
    return outcome


def report(flow: str, results: Iterable[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    """Summarise the runs of the ``sync`` task(s) from the state store's run records."""
    results = [results] if isinstance(results, dict) else [r for r in results if r]
    with (failure_semantics(f"flow {flow}: report"),
          StateStore.open(state_url()) as store):
        runs = [store.get_run(r["run_id"]) for r in results if r.get("run_id") is not None]
        totals = {name: sum(run.counts[name] for run in runs) for name in COUNT_FIELDS}
        open_letters = store.count_dead_letters(flow=flow, status="open")
        parked = store.count_dead_letters(flow=flow, status="parked")
    statuses = sorted({run.status for run in runs})
    summary = {
        "flow": flow,
        "run_ids": [run.id for run in runs],
        "status": "partial" if "partial" in statuses else ("succeeded" if runs else "no runs"),
        "counts": totals,
        "new_dead_letters": sum(int(r.get("new_dead_letters") or 0) for r in results),
        "open_dead_letters": open_letters,
        "parked": parked,
    }
    log.info("flow %s: %d run(s) %s; %s", flow, len(runs), ", ".join(statuses) or "-",
             ", ".join(f"{k}={v}" for k, v in totals.items()))
    if summary["new_dead_letters"] or open_letters:
        log.warning("flow %s: %d new dead letter(s), %d open in total; see "
                    "`crm2erp dlq list --flow %s`", flow, summary["new_dead_letters"],
                    open_letters, flow)
    return summary

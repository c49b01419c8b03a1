"""The flow's ``on_dead_letters:`` webhook, called after every run (a run hook).

When a run ends with new dead letters, or is stopped by a quality threshold
(:class:`~crm2erp.errors.QualityGateError`), the URL gets one JSON POST:
``{"event", "flow", "run_id", "partition", "status", "new_dead_letters",
"counts", "quality_breach", "hint"}``. A dry run notifies nobody. A webhook
that cannot be reached or answers an error is logged as a warning naming the
flow and the status; the run's outcome does not change.
"""

from __future__ import annotations

__all__ = ["WEBHOOK_TIMEOUT", "payload", "notify_dead_letters", "post_webhook"]

import logging
from typing import Any

from crm2erp.errors import QualityGateError
from crm2erp.redact import redact
from crm2erp.store import COUNT_FIELDS

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT = 10.0  # seconds, connect and read


def payload(result: Any) -> dict[str, Any] | None:
    """The JSON body for ``result``, or None when there is nothing to tell."""
    breach = result.error if isinstance(result.error, QualityGateError) else None
    if result.mode == "dry_run" or (not result.new_dead_letters and breach is None):
        return None
    return {
        "event": "quality_breach" if breach is not None else "dead_letters",
        "flow": result.flow,
        "run_id": result.run_id,
        "partition": result.partition,
        "status": result.status,
        "new_dead_letters": result.new_dead_letters,
        "counts": {name: result.counts[name] for name in COUNT_FIELDS},
        "quality_breach": redact(str(breach)) if breach is not None else None,
        "hint": f"crm2erp dlq list --flow {result.flow}",
    }


def notify_dead_letters(runner: Any, result: Any) -> None:
    """Run hook: POST :func:`payload` to the flow's ``on_dead_letters`` URL."""
    url = getattr(runner.flow, "on_dead_letters", None)
    body = payload(result) if url else None
    if url is None or body is None:
        return
    post_webhook(url, body)


def post_webhook(url: str, body: dict[str, Any]) -> bool:
    """POST ``body`` (with ``event``, ``flow`` and ``run_id``) to ``url``; a webhook that
    cannot be reached or answers an error is a warning naming the flow and run.
    Whether it was delivered."""
    import requests  # here: every run calls the hook, few runs post (0.1 s of import)

    flow, run_id = body.get("flow"), body.get("run_id")
    try:
        response = requests.post(url, json=body, timeout=WEBHOOK_TIMEOUT)
    except requests.RequestException as exc:
        log.warning("flow %s run %s: the on_dead_letters webhook could not be reached: %s",
                    flow, run_id, type(exc).__name__)
        return False
    if response.status_code >= 400:
        log.warning("flow %s run %s: the on_dead_letters webhook answered HTTP %s",
                    flow, run_id, response.status_code)
        return False
    log.info("flow %s run %s: on_dead_letters webhook notified (%s)", flow, run_id,
             body["event"])
    return True

"""The Checkpoint action that tells the flow's ``on_dead_letters:`` webhook about a
failing quality check (the ``gx/`` folder mode, :mod:`crm2erp.quality.gx.project`).

:class:`NotifyWebhookAction` is a GX ``ValidationAction`` saved in each flow's
Checkpoint file beside the ``UpdateDataDocsAction``, as
``{"type": "crm2erp_notify", "name": "notify", "flow": "<flow>"}``. Importing this
module registers the type with GX, so the saved Checkpoint loads again.

The webhook URL is *not* saved (a webhook URL often holds a token): crm2erp
hands it to the action when it runs the Checkpoint for a sync run
(:meth:`NotifyWebhookAction.bind`). A Checkpoint run with no URL bound, or one
that is not a sync run (``crm2erp quality run``, a user's own run), notifies
nobody. A sync run is notified once, at its first failing batch: one JSON POST
``{"event": "quality_checkpoint_failed", "flow", "run_id", "checkpoint",
"failing": [{"rule", "expectation", "column", "failed", "evaluated"}],
"message", "hint"}``, the counts read as the gate reads them
(:mod:`crm2erp.quality.gx.results`); no values of the failing rows are sent.
"""

from __future__ import annotations

__all__ = ["NotifyWebhookAction", "RUN_PREFIX", "run_name", "failing_rules"]

from typing import Any, Literal

from great_expectations.checkpoint import ValidationAction
from great_expectations.compatibility.pydantic import PrivateAttr

from crm2erp.engine.notify import post_webhook
from crm2erp.quality.gx.results import read_result

#: the GX run name of a crm2erp sync run's Checkpoint runs: the prefix and the run id
RUN_PREFIX = "crm2erp-run-"


def run_name(run_id: int) -> str:
    return f"{RUN_PREFIX}{run_id}"


def failing_rules(checkpoint_result: Any) -> list[dict[str, Any]]:
    """The failing expectations of a Checkpoint result: rule, expectation, column, counts
    (``evaluated``: the rows the rule judged, those its ``when:`` selected)."""
    return [{"rule": one.rule, "expectation": one.expectation, "column": one.column,
             "failed": one.failed, "evaluated": one.evaluated}
            for validation in checkpoint_result.run_results.values()
            for one in map(read_result, validation.results) if not one.success]


class NotifyWebhookAction(ValidationAction):
    """POST a failing Checkpoint run of a sync run to the flow's webhook (see module)."""

    type: Literal["crm2erp_notify"] = "crm2erp_notify"
    flow: str

    _url: str | None = PrivateAttr(default=None)
    _told: set = PrivateAttr(default_factory=set)

    def bind(self, url: str | None) -> None:
        """The webhook URL for this process's runs (the flow's ``on_dead_letters``)."""
        self._url = url

    def run(self, checkpoint_result, action_context=None) -> dict:
        name = checkpoint_result.run_id.run_name or ""
        if (checkpoint_result.success or self._url is None or not name.startswith(RUN_PREFIX)
                or name in self._told):
            return {"notified": False}
        self._told.add(name)
        run_id = int(name.removeprefix(RUN_PREFIX))
        failing = failing_rules(checkpoint_result)
        rules = "; ".join(f"rule {f['rule']!r} ({f['expectation']}"
                          f"{' on ' + f['column'] if f['column'] else ''}): "
                          f"{f['failed']} of {f['evaluated']} rows failed" for f in failing)
        body = {"event": "quality_checkpoint_failed", "flow": self.flow, "run_id": run_id,
                "checkpoint": checkpoint_result.name, "failing": failing,
                "message": f"flow {self.flow} run {run_id}: Checkpoint "
                           f"{checkpoint_result.name} failed: {rules}",
                "hint": f"crm2erp report {run_id}"}
        return {"notified": post_webhook(self._url, body)}

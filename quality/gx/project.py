"""A file-backed GX context per project, opt-in with a ``gx/`` folder.

A project whose folder (the one with ``connections.yaml``) has a ``gx/``
folder gets a file-backed Great Expectations context there: each flow's
suite, a Validation Definition (the suite on the pandas batch of canonical
records) and a Checkpoint with two actions, an ``UpdateDataDocsAction`` and
the flow's notifier (:class:`~crm2erp.quality.gx.actions.NotifyWebhookAction`),
are saved under their names ``crm2erp.<flow>`` and reused by later runs, and
every batch the gate checks runs through that Checkpoint, so its results land
in the project's Data Docs (``gx/uncommitted/data_docs/``) and a failing check
of a sync run reaches the flow's ``on_dead_letters`` webhook. Without the folder, one
ephemeral context serves every flow (:func:`~crm2erp.quality.gx.suite.gx_context`).
"""

from __future__ import annotations

__all__ = ["GX_FOLDER", "project_gx_root", "file_context", "FlowCheckpoint"]

import functools
from pathlib import Path
from typing import Any

import great_expectations as gx
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.core.run_identifier import RunIdentifier

from crm2erp.quality.gx.actions import NotifyWebhookAction, run_name
from crm2erp.quality.gx.suite import quiet_gx_logging

GX_FOLDER = "gx"
SOURCE, ASSET, BATCH = "crm2erp", "batch", "batch"


def project_gx_root(flow) -> Path | None:
    """The project folder of ``flow`` when it has a ``gx/`` folder, else None."""
    start = Path(flow.source_file).resolve().parent if flow.source_file else None
    for folder in ([start, *start.parents] if start else []):
        if (folder / "connections.yaml").is_file():
            return folder if (folder / GX_FOLDER).is_dir() else None
    return None


@functools.cache
def file_context(root: str):
    """The file-backed context in ``root/gx`` with crm2erp's dataframe batch (GX's
    logs at WARNING, no progress bars)."""
    quiet_gx_logging()
    context = gx.get_context(mode="file", project_root_dir=root)
    context.variables.progress_bars = {"globally": False}
    try:
        source = context.data_sources.get(SOURCE)
    except (KeyError, ValueError):
        source = context.data_sources.add_pandas(SOURCE)
    try:
        asset = source.get_asset(ASSET)
    except LookupError:
        asset = source.add_dataframe_asset(ASSET)
    if not any(b.name == BATCH for b in asset.batch_definitions):
        asset.add_batch_definition_whole_dataframe(BATCH)
    return context


class FlowCheckpoint:
    """The saved suite, Validation Definition and Checkpoint of one flow."""

    def __init__(self, root: Path, suite: gx.ExpectationSuite, result_format: dict[str, Any],
                 flow):
        context = file_context(str(root))
        batch = context.data_sources.get(SOURCE).get_asset(ASSET).get_batch_definition(BATCH)
        self.suite = context.suites.add_or_update(suite)
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite.name, data=batch, suite=self.suite))
        self.checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
            name=suite.name, validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data_docs"),
                     NotifyWebhookAction(name="notify", flow=flow.flow)],
            result_format=result_format))
        for action in self.checkpoint.actions:
            if isinstance(action, NotifyWebhookAction):
                action.bind(getattr(flow, "on_dead_letters", None))

    def validate(self, frame, run_id: int | None = None) -> Any:
        """The suite's validation result for one batch of sync run ``run_id`` (None:
        not a sync run); Data Docs updated, the notifier told of a failure."""
        run = RunIdentifier(run_name=run_name(run_id)) if run_id is not None else None
        result = self.checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run)
        return next(iter(result.run_results.values()))

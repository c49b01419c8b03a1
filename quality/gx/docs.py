"""GX Data Docs of a run, built into the reports folder.

Each flow has one Data Docs site, ``<reports>/gx-docs/<flow>/index.html``,
rebuilt after every run with the flow's suite and the validation results of
that run's batches (the first few): GX's site builder keeps only what the
context holds, so the site shows the latest run. The steward report links to it.
"""

from __future__ import annotations

__all__ = ["build_data_docs"]

import logging
from pathlib import Path

import great_expectations as gx
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

from crm2erp.quality.report.paths import docs_index

log = logging.getLogger(__name__)


def build_data_docs(suite, results, reports: Path, flow: str, run_id: int) -> Path:
    """Write the flow's Data Docs site; returns its index.html."""
    site_dir = docs_index(reports, flow).parent
    site_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    context.suites.add(gx.ExpectationSuite(name=suite.name, meta=suite.meta,
                                           expectations=[e.configuration
                                                         for e in suite.expectations]))
    context.add_data_docs_site("crm2erp", {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(site_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    suite_id = ExpectationSuiteIdentifier(name=suite.name)
    for number, result in enumerate(results, start=1):
        key = ValidationResultIdentifier(
            expectation_suite_identifier=suite_id,
            run_id=RunIdentifier(run_name=f"run-{run_id}"),
            batch_identifier=f"batch-{number}")
        context.validation_results_store.set(key, result)
    context.build_data_docs(site_names=["crm2erp"])
    log.info("flow %s: GX data docs in %s", flow, site_dir)
    return site_dir / "index.html"

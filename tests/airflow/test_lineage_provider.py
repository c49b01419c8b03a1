"""Under Airflow, lineage goes through the OpenLineage provider; without it the
sync task runs as before and says why no events were sent (debug log)."""

from __future__ import annotations

import importlib.util
import logging

import pytest

from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir
from crm2erp.orchestration import tasks


@pytest.mark.skipif(importlib.util.find_spec("airflow.providers.openlineage") is not None,
                    reason="the OpenLineage provider is installed here")
def test_without_the_provider_no_lineage_and_a_debug_line(caplog, monkeypatch):
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", "/nonexistent")
    project = load_project(pack_dir("demo"))
    with caplog.at_level(logging.DEBUG, logger=tasks.__name__):
        assert tasks.airflow_lineage(project) is None
    assert "no OpenLineage events" in caplog.text
    assert "apache-airflow-providers-openlineage" in caplog.text

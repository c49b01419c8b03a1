"""Under Airflow, lineage goes through the OpenLineage provider; without it the
sync task runs as before and says why no events were sent (debug log)."""

from __future__ import annotations

import logging
import sys

import pytest

from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir


@pytest.fixture
def tasks():
    """crm2erp.orchestration.tasks, imported when a test runs (it imports Airflow, which
    sets up its logging: before the test's log capture starts), not at collection."""
    from crm2erp.orchestration import tasks

    return tasks


def test_without_the_provider_no_lineage_and_a_debug_line(tasks, caplog, monkeypatch):
    # None in sys.modules: importing the provider raises ImportError, as when absent
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage", None)
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", "/nonexistent")
    project = load_project(pack_dir("demo"))
    with caplog.at_level(logging.DEBUG, logger=tasks.__name__):
        assert tasks.airflow_lineage(project) is None
    assert "no OpenLineage events" in caplog.text
    assert "apache-airflow-providers-openlineage" in caplog.text


def test_dags_test_demo_accounts_emits_through_the_provider(airflow, airflow_db, tmp_path):
    import json

    from crm2erp.demo.sample import sample_crm_rows
    from crm2erp.demo.systems import create_systems

    crm, erp = f"sqlite:///{tmp_path}/crm.db", f"sqlite:///{tmp_path}/erp.db"
    create_systems(crm, erp, sample_crm_rows(accounts=20))
    events_file = tmp_path / "openlineage.jsonl"
    # the demo pack as the project: `dags test` parses the demo's DAGs, not every pack's
    env = {"CRM2ERP_PROJECT": str(pack_dir("demo")),
           "CRM2ERP_DEMO_DIR": str(tmp_path), "CRM2ERP_STATE_URL": f"sqlite:///{tmp_path}/s.db",
           "AIRFLOW__OPENLINEAGE__NAMESPACE": "crm2erp_test",
           "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
               {"type": "file", "log_file_path": str(events_file), "append": True})}
    airflow.dags_test("demo_accounts", env=env)
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    ours = [e for e in events if e["producer"].startswith("urn:crm2erp:")]
    assert [(e["eventType"], e["job"]["namespace"], e["job"]["name"]) for e in ours] == [
        ("START", "crm2erp_test", "demo_accounts"), ("COMPLETE", "crm2erp_test", "demo_accounts")]
    complete = ours[1]
    assert [(d["namespace"], d["name"]) for d in complete["inputs"]] == [
        (f"sqlite://{tmp_path}/crm.db", "main.accounts")]
    assert complete["outputs"][0]["namespace"] == f"sqlite://{tmp_path}/erp.db"
    assert complete["outputs"][0]["name"] == "main.customers"
    project = load_project(pack_dir("demo"), env={"CRM2ERP_DEMO_DIR": str(tmp_path)})
    outbound = project.mapping(project.flow("demo_accounts").target_mapping_path)
    lineage = complete["outputs"][0]["facets"]["columnLineage"]["fields"]
    assert set(lineage) == set(outbound.fields)          # every mapped field
    assert all(f["inputFields"] for f in lineage.values())
    assert complete["run"]["facets"]["crm2erp"]["counts"]["read"] == 20

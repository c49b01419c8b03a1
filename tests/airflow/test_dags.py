"""The DAGs built from the flow files: they import cleanly, have the promised
shape, and a broken file is an import error naming file and line while the
other flows' DAGs still load."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from crm2erp.mappings import pack_dir
from crm2erp.orchestration.projects import scan_projects


@pytest.fixture
def dagbag(airflow):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(airflow.dags))


def test_every_shipped_flow_has_a_dag_and_nothing_fails_to_import(dagbag, airflow):
    shipped = scan_projects()
    assert not shipped.issues, shipped.error()
    assert {"demo_accounts", "demo_contacts", "demo_orders", "demo_invoices"} <= set(shipped.flows)
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == set(shipped.flows)
    errors = airflow.json(airflow.run("dags", "list-import-errors", "--local", "-o", "json"))
    assert errors == []


def test_a_flow_dag_has_the_promised_shape(dagbag):
    dag = dagbag.get_dag("demo_orders")
    assert [t.task_id for t in dag.topological_sort()] == ["check_connections", "sync", "report"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.start_date == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert "crm2erp" in dag.tags and "demo" in dag.tags
    assert "Won CRM deals become ERP sales orders" in dag.doc_md
    sync = dag.get_task("sync")
    assert sync.retries == 3 and sync.retry_exponential_backoff == 2.0
    assert sync.owner == "crm2erp"
    report = dag.get_task("report")
    assert [a.uri for a in report.outlets] == ["crm2erp://flow/demo_orders"]


def test_return_flow_runs_on_the_asset_of_the_flow_it_follows(dagbag):
    invoices = dagbag.get_dag("demo_invoices")
    assets = invoices.timetable.asset_condition.objects
    assert [asset.uri for asset in assets] == ["crm2erp://flow/demo_orders"]


def _write_project(root, body_of_contacts: str | None = None, extra_flow: str | None = None):
    shutil.copytree(pack_dir("demo"), root)
    if body_of_contacts is not None:
        (root / "contacts.flow.yaml").write_text(body_of_contacts)
    if extra_flow is not None:
        (root / "extra.flow.yaml").write_text(extra_flow)
    return root


def test_partitions_fan_out_and_depends_on_without_schedule_uses_assets(airflow, tmp_path,
                                                                        monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    root = _write_project(tmp_path / "p", extra_flow=(
        "flow: extra_accounts\nentity: Account\n"
        "source: {connection: crm, stream: accounts, mapping: maps/crm_account.in.map.yaml}\n"
        "target: {connection: erp, stream: customers, mapping: maps/erp_customer.out.map.yaml}\n"
        "partitions: {count: 3}\ndepends_on: [demo_accounts, demo_orders]\nowner: sales-ops\n"))
    monkeypatch.setenv("CRM2ERP_PROJECT", str(root))
    bag = DagBag(dag_folder=str(airflow.dags))
    assert bag.import_errors == {}
    dag = bag.get_dag("extra_accounts")
    sync = dag.get_task("sync")
    assert sync.is_mapped and sync.op_kwargs_expand_input.value["partition"] == [0, 1, 2]
    assert dag.get_task("report").owner == "sales-ops"
    assets = dag.timetable.asset_condition.objects
    assert sorted(asset.uri for asset in assets) == ["crm2erp://flow/demo_accounts",
                                                 "crm2erp://flow/demo_orders"]


BROKEN = """\
flow: demo_contacts
entity: Contact
source: {connection: crm stream: contacts}
"""


def test_broken_yaml_is_an_import_error_naming_file_and_line(airflow, tmp_path):
    root = _write_project(tmp_path / "p", body_of_contacts=BROKEN)
    env = {"CRM2ERP_PROJECT": str(root)}
    done = airflow.run("dags", "list-import-errors", "--local", "-o", "json", env=env,
                       check=False)
    assert done.returncode == 1  # the command's way of saying "there are import errors"
    errors = airflow.json(done)
    assert len(errors) == 1
    assert errors[0]["filepath"].endswith("crm2erp_config_errors.py")
    assert f"{root / 'contacts.flow.yaml'}:3:" in errors[0]["error"]
    listed = airflow.json(airflow.run("dags", "list", "--local", "-o", "json", env=env))
    assert sorted(d["dag_id"] for d in listed) == [
        "demo_accounts", "demo_balances", "demo_invoices", "demo_order_status", "demo_orders"]


def test_an_invalid_value_is_reported_at_its_line(airflow, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    body = (pack_dir("demo") / "contacts.flow.yaml").read_text().replace(
        "batch_size: 100", "batch_size: -5")
    root = _write_project(tmp_path / "p", body_of_contacts=body)
    monkeypatch.setenv("CRM2ERP_PROJECT", str(root))
    bag = DagBag(dag_folder=str(airflow.dags))
    (path, message), = bag.import_errors.items()
    assert path.endswith("crm2erp_config_errors.py")
    line = next(i for i, text in enumerate(body.splitlines(), 1) if "batch_size" in text)
    assert f"contacts.flow.yaml:{line}:" in message and "batch_size" in message
    assert "demo_accounts" in bag.dag_ids and "demo_contacts" not in bag.dag_ids


def test_the_flow_timeout_is_the_sync_task_execution_timeout(airflow, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    root = _write_project(tmp_path / "p", extra_flow=(
        "flow: timed_accounts\nentity: Account\n"
        "source: {connection: crm, stream: accounts, mapping: maps/crm_account.in.map.yaml}\n"
        "target: {connection: erp, stream: customers, mapping: maps/erp_customer.out.map.yaml}\n"
        "timeout: 45m\n"))
    monkeypatch.setenv("CRM2ERP_PROJECT", str(root))
    bag = DagBag(dag_folder=str(airflow.dags))
    assert bag.import_errors == {}
    assert bag.get_dag("timed_accounts").get_task("sync").execution_timeout == \
        dt.timedelta(minutes=45)
    assert bag.get_dag("demo_accounts").get_task("sync").execution_timeout is None

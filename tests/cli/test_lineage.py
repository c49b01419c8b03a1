"""OpenLineage run events of ``crm2erp sync run --lineage-file``: the CLI (run in
this process) syncing the demo's SQLite CRM into its SQLite ERP, events read back
from the file and checked against the mappings and the state store."""

from __future__ import annotations

import json
import os
import uuid

import openlineage.client  # noqa: E402,F401  (the lineage extra, in dev: a missing one fails)
import pytest

from crm2erp.demo import create_systems, write_project  # noqa: E402
from crm2erp.demo.sample import sample_crm_rows  # noqa: E402
from crm2erp.mapping import load_project  # noqa: E402
from crm2erp.store import COUNT_FIELDS, StateStore  # noqa: E402
from tests.clirunner import run

# the demo's accounts flow, from its two mappings: target column -> (source column,
# inbound transforms, canonical field, outbound transforms)
ACCOUNT_LINEAGE = {
    "crm_ref": ("id", ["crossref"], "id", []),
    "name": ("company_name", ["strip", "collapse_spaces"], "name", []),
    "kind": ("account_type", ["strip", "value_map"], "type", []),
    "email": ("email", ["email"], "email", []),
    "phone": ("phone", ["phone"], "phone", []),
    "street": ("street", ["strip", "collapse_spaces"], "billing_address.street", []),
    "postal_code": ("zip", ["strip"], "billing_address.postal_code", []),
    "city": ("city", ["strip", "collapse_spaces"], "billing_address.city", []),
    "country": ("country", ["country"], "billing_address.country", []),
    "vat": ("vat_id", ["strip", "upper"], "tax_id", []),
    "currency": ("currency", ["strip", "upper"], "currency", []),
}


@pytest.fixture
def demo(tmp_path):
    create_systems(f"sqlite:///{tmp_path}/crm.db", f"sqlite:///{tmp_path}/erp.db",
                   sample_crm_rows(accounts=30))
    return write_project(tmp_path, tmp_path / "state.db", fresh=True)


def sync(project, *args):
    return run(["-p", str(project), "sync", "run", *args],
               env={**os.environ, "COLUMNS": "200"}, cwd=project.parent)


def read_events(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sync_writes_start_and_complete_with_datasets_and_column_lineage(demo, tmp_path):
    events_file = tmp_path / "events.jsonl"
    done = sync(demo, "demo_accounts", "demo_orders", "--lineage-file", str(events_file))
    assert done.returncode in (0, 1), done.stderr   # 1: the seeded bad rows are dead letters
    events = read_events(events_file)
    assert [(e["eventType"], e["job"]["name"]) for e in events] == [
        ("START", "demo_accounts"), ("COMPLETE", "demo_accounts"),
        ("START", "demo_orders"), ("COMPLETE", "demo_orders")]
    start, complete = events[0], events[1]
    assert start["run"]["runId"] == complete["run"]["runId"]
    uuid.UUID(start["run"]["runId"])
    assert complete["job"]["namespace"] == "crm2erp"
    for field in ("eventTime", "producer", "schemaURL"):
        assert complete[field]

    crm, erp = f"sqlite://{tmp_path}/crm.db", f"sqlite://{tmp_path}/erp.db"
    assert [(d["namespace"], d["name"]) for d in complete["inputs"]] == [(crm, "main.accounts")]
    # the customers table, and the CRM accounts the ERP number is written back to
    assert [(d["namespace"], d["name"]) for d in complete["outputs"]] == [
        (erp, "main.customers"), (crm, "main.accounts")]

    lineage = complete["outputs"][0]["facets"]["columnLineage"]["fields"]
    assert set(lineage) == set(ACCOUNT_LINEAGE)
    for target, (source, inbound, canonical, outbound) in ACCOUNT_LINEAGE.items():
        [field] = lineage[target]["inputFields"]
        assert (field["namespace"], field["name"], field["field"]) == (crm, "main.accounts",
                                                                      source)
        [how] = field["transformations"]
        assert how["type"] == "DIRECT"
        assert how["subtype"] == ("TRANSFORMATION" if inbound + outbound else "IDENTITY")
        assert how["description"] == (
            f"{source} -[{', '.join(inbound) or 'as is'}]-> canonical Account.{canonical} "
            f"-[{', '.join(outbound) or 'as is'}]-> {target}")

    # counts and dead letters as facets, equal to what the state store recorded
    state = StateStore.open(f"sqlite:///{tmp_path}/state.db")
    try:
        run = state.get_run(complete["run"]["facets"]["crm2erp"]["runId"])
        letters = state.count_dead_letters(flow="demo_accounts", status="open")
    finally:
        state.close()
    facet = complete["run"]["facets"]["crm2erp"]
    assert {k: facet["counts"][k] for k in COUNT_FIELDS} == {k: run.counts[k]
                                                            for k in COUNT_FIELDS}
    assert facet["status"] == run.status == "partial"
    assert facet["newDeadLetters"] == letters > 0   # the sample's invalid rows
    assert complete["inputs"][0]["inputFacets"]["inputStatistics"]["rowCount"] == 30
    assert complete["outputs"][0]["facets"]["outputStatistics"]["rowCount"] == \
        run.counts["created"] + run.counts["updated"] + run.counts["deleted"]


def test_every_mapped_field_of_the_orders_flow_has_lineage_including_lines(demo, tmp_path):
    events_file = tmp_path / "events.jsonl"
    sync(demo, "demo_accounts", "demo_orders", "--lineage-file", str(events_file))
    complete = read_events(events_file)[-1]
    crm, erp = f"sqlite://{tmp_path}/crm.db", f"sqlite://{tmp_path}/erp.db"
    # the deal lines live in their own tables on both sides (the streams' children)
    assert [(d["namespace"], d["name"]) for d in complete["inputs"]] == [
        (crm, "main.deals"), (crm, "main.deal_lines")]
    assert [(d["namespace"], d["name"]) for d in complete["outputs"]] == [
        (erp, "main.sales_orders"), (erp, "main.sales_order_lines")]
    orders, lines = (d["facets"]["columnLineage"]["fields"] for d in complete["outputs"])
    project = load_project(demo)
    outbound = project.mapping(project.flow("demo_orders").target_mapping_path)
    mapped = {name for name, field in outbound.fields.items() if not field.each}
    # status is a constant in the inbound mapping: no source field feeds it
    assert set(orders) == mapped - {"status"}
    assert set(lines) == set(outbound.fields["lines"].each)
    [sku] = lines["sku"]["inputFields"]
    assert (sku["namespace"], sku["name"], sku["field"]) == (crm, "main.deal_lines", "sku")
    assert sku["transformations"][0]["description"] == (
        "lines.sku -[strip, upper]-> canonical SalesOrder.lines.product_code -[as is]-> "
        "lines.sku")
    [customer] = orders["customer_id"]["inputFields"]
    assert (customer["name"], customer["field"]) == ("main.deals", "account_id")
    assert "strip, xref" in customer["transformations"][0]["description"]
    assert "-[xref]-> customer_id" in customer["transformations"][0]["description"]


def test_a_failing_run_emits_fail_with_the_error(demo, tmp_path):
    (tmp_path / "erp.db").unlink()
    (tmp_path / "erp.db").mkdir()   # the ERP database cannot be opened
    events_file = tmp_path / "events.jsonl"
    done = sync(demo, "demo_accounts", "--lineage-file", str(events_file))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    events = read_events(events_file)
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert events[1]["run"]["runId"] == events[0]["run"]["runId"]
    error = events[1]["run"]["facets"]["errorMessage"]
    assert error["programmingLanguage"] == "PYTHON" and error["message"]


def test_lineage_url_posts_the_events_to_an_openlineage_endpoint(demo, tmp_path):
    from crm2erp.emulators.kernel.server import serve_wsgi

    received = []

    def backend(environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        received.append((environ["PATH_INFO"], json.loads(environ["wsgi.input"].read(size))))
        start_response("201 Created", [])
        return [b""]

    with serve_wsgi(backend) as url:
        done = sync(demo, "demo_accounts", "--lineage-url", url)
    assert done.returncode in (0, 1), done.stderr
    assert [(path, e["eventType"], e["job"]["name"]) for path, e in received] == [
        ("/api/v1/lineage", "START", "demo_accounts"),
        ("/api/v1/lineage", "COMPLETE", "demo_accounts")]
    assert set(received[1][1]["outputs"][0]["facets"]["columnLineage"]["fields"]) == \
        set(ACCOUNT_LINEAGE)


def test_lineage_file_in_a_missing_folder_is_a_config_error(demo, tmp_path):
    done = sync(demo, "demo_accounts", "--lineage-file", str(tmp_path / "no" / "ev.jsonl"))
    assert done.returncode == 2 and "does not exist" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("type_,settings,stream,expected", [
    ("sql", {"url": "postgresql+psycopg://u:p@db.example.com:5433/sales", "schema": "crm",
             "streams": {"accounts": {"table": "account", "key": "id"}}}, "accounts",
     ("postgres://db.example.com:5433", "sales.crm.account")),
    ("sql", {"url": "postgresql://db.example.com/sales"}, "customers",
     ("postgres://db.example.com:5432", "sales.public.customers")),
    ("sql", {"url": "mysql+pymysql://root@127.0.0.1/erp"}, "customers",
     ("mysql://127.0.0.1:3306", "erp.customers")),
    ("salesforce", {"instance_url": "https://acme.my.salesforce.com",
                    "streams": {"accounts": {"sobject": "Account", "fields": ["Id"]}}},
     "accounts", ("salesforce://acme.my.salesforce.com", "Account")),
    ("hubspot", {"base_url": "https://api.hubapi.com"}, "companies",
     ("hubspot://api.hubapi.com", "companies")),
    ("odoo", {"url": "https://erp.example.com", "database": "prod"}, "partners",
     ("odoo://erp.example.com", "prod.partners")),
])
def test_dataset_names_follow_the_openlineage_conventions(type_, settings, stream, expected):
    from crm2erp.lineage import dataset_id
    from crm2erp.mapping.models import ConnectionSpec

    assert dataset_id(ConnectionSpec("c", type_, settings), stream) == expected


def test_a_file_source_is_named_by_its_absolute_path(tmp_path):
    from crm2erp.lineage import dataset_id
    from crm2erp.mapping.models import ConnectionSpec

    spec = ConnectionSpec("f", "file", {"path": str(tmp_path),
                                        "streams": {"accounts": {"file": "accounts.csv"}}})
    assert dataset_id(spec, "accounts") == ("file://", str(tmp_path / "accounts.csv"))

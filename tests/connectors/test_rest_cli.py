"""A YAML-only REST project driven through the ``crm2erp`` command.

The project is the "Writing back into a nested field" example of
docs/connectors/rest.md: organizations from the demo CRM API (Pipedrive v2
shape) into an ERP database, the ERP customer number written back into the
organization's custom field. The CRM runs in this process on a loopback port;
``crm2erp`` runs as a real process, as a user runs it.
"""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm2erp.connectors import create_connector
from crm2erp.emulators.rest.app import CLIENT_ID, CLIENT_SECRET, ERP_FIELD, make_app
from crm2erp.mapping import load_connections
from tests.clirunner import run

DOC = Path(__file__).resolve().parents[2] / "docs" / "connectors" / "rest.md"
ORG_IN = """
mapping: org_in
direction: inbound
entity: Account
fields:
  name: {from: name, transforms: [strip], required: true}
  billing_address.street: {from: address.route}
  billing_address.postal_code: {from: address.postal_code}
  billing_address.city: {from: address.locality}
  billing_address.country: {from: address.country, transforms: [country]}
  updated_at: {from: update_time, transforms: [{datetime: {tz: UTC}}]}
"""
CUSTOMER_OUT = """
mapping: customer_out
direction: outbound
entity: Account
fields:
  crm_ref: {from: id}
  name: {from: name}
  city: {from: billing_address.city}
  country: {from: billing_address.country}
"""


def doc_project() -> tuple[str, str]:
    """The connections and flow blocks of the page's nested write-back section."""
    section = DOC.read_text(encoding="utf-8").split("## Writing back into a nested field")[1]
    connections, flow = re.findall(r"```yaml\n(.*?)```", section, re.S)[:2]
    return connections, flow


class Counting:
    """The demo API, counting the calls by method."""

    def __init__(self, app):
        self.app, self.calls = app, []

    def __getattr__(self, name):
        return getattr(self.app, name)

    def __setattr__(self, name, value):
        if name == "base_url":
            self.app.base_url = value
        object.__setattr__(self, name, value)

    def __call__(self, environ, start_response):
        self.calls.append(environ["REQUEST_METHOD"])
        return self.app(environ, start_response)


@pytest.fixture
def crm(serve):
    api = Counting(make_app(seed=8, organizations=23))
    return serve(api)


@pytest.fixture
def project(tmp_path, crm):
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    meta = sa.MetaData()
    customers = sa.Table("customers", meta,
                         sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                         sa.Column("crm_ref", sa.String(64), nullable=False, unique=True),
                         sa.Column("name", sa.String(200), nullable=False),
                         sa.Column("kind", sa.String(20)),
                         sa.Column("email", sa.String(200)),
                         sa.Column("city", sa.String(100)),
                         sa.Column("country", sa.String(2)))
    engine = sa.create_engine(erp_url)
    meta.create_all(engine)
    env = {"DEMO_CRM_URL": crm.app.base_url, "DEMO_CRM_CLIENT_ID": CLIENT_ID,
           "DEMO_CRM_CLIENT_SECRET": CLIENT_SECRET, "DEMO_ERP_URL": erp_url}
    folder = tmp_path / "project"
    folder.mkdir()
    connections, flow = doc_project()
    for name, text in {"connections.yaml": connections, "organizations.flow.yaml": flow,
                       "org.in.map.yaml": ORG_IN,
                       "customer.out.map.yaml": CUSTOMER_OUT}.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    yield folder, env, engine, customers
    engine.dispose()


def crm2erp(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return run(["-p", str(folder), "--state", f"sqlite:///{folder.parent / 'state.db'}",
                *args], cwd=folder.parent, env={**os.environ, **env, "COLUMNS": "200"})


def name_the_nested_field(folder: Path) -> None:
    """The write-back names the nested field itself, with no rename (issue 11, finding 8)."""
    connections, flow = folder / "connections.yaml", folder / "organizations.flow.yaml"
    text = connections.read_text()
    rename = re.search(r"\n        rename:\n          .*\n", text)[0]
    connections.write_text(text.replace(rename, "\n"))
    flow.write_text(flow.read_text().replace("field: erp_customer_no",
                                             f"field: custom_fields.{ERP_FIELD}"))


@pytest.mark.slow   # three CLI runs
@pytest.mark.parametrize("natural", [False, True], ids=["renamed", "dotted"])
def test_write_back_into_a_nested_custom_field_is_stored_and_read_back(project, crm, natural):
    folder, env, erp, customers = project
    if natural:
        name_the_nested_field(folder)
    first = crm2erp(folder, env, "sync", "run")
    assert first.returncode == 0, first.stdout + first.stderr
    with erp.connect() as conn:
        erp_ids = {row.name: str(row.id) for row in conn.execute(sa.select(customers))}
    assert len(erp_ids) == 23
    # read back through the CRM's own API: every organization holds its ERP number
    spec = load_connections(folder / "connections.yaml", env)["crm"]
    with create_connector(spec.type, dict(spec.settings)) as api:
        stored = {row["name"]: row["custom_fields"][ERP_FIELD] if natural
                  else row["erp_customer_no"]
                  for batch in api.read("organizations") for row in batch.rows}
    assert stored == erp_ids
    assert crm.orgs[5][ERP_FIELD] == erp_ids[crm.orgs[5]["name"]] is not None
    assert crm.calls.count("PATCH") == 23
    # nothing changed: the second run reads the numbers back and writes nothing
    second = crm2erp(folder, env, "sync", "run")
    assert second.returncode == 0, second.stdout + second.stderr
    assert crm.calls.count("PATCH") == 23
    # a flow without `incremental` reads everything each run and says so
    status = crm2erp(folder, env, "status")
    assert status.returncode == 0, status.stderr
    modes = re.findall(r"│\s*\d+\s*│\s*organizations\s*│\s*(\w+)\s*│", status.stdout)
    assert modes == ["full", "full"], status.stdout


def test_a_wrong_records_path_stops_the_run_with_exit_2_naming_path_and_keys(project, crm):
    folder, env, erp, customers = project
    path = folder / "connections.yaml"
    path.write_text(path.read_text().replace("records: data", "records: items"))
    run = crm2erp(folder, env, "sync", "run")
    assert run.returncode == 2, run.stdout + run.stderr
    message = " ".join(run.stderr.split())
    assert "configuration error" in message
    assert ("demo-crm-v2: stream 'organizations': GET /api/v2/organizations: the reply has "
            "no records at 'items' (the reply holds: success, data, additional_data); "
            "fix 'records'") in message
    with erp.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(customers)).scalar() == 0

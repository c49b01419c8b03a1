"""`mappings validate` catches typos before they null out data (issue 10 finding 6,
the delete-policy part of finding 2; issue 11 finding 10): canonical fields,
source and target fields of the streams (declared by the connector, or reflected
from a reachable database), connector settings and delete policies, each at its
file:line:column with a did-you-mean."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm2erp.errors import ConfigError
from crm2erp.mapping import load_mapping, validate_project
from tests.clirunner import run

from .helpers import write

CONNECTIONS = """
connections:
  crm:
    type: sql
    url: sqlite:///{dir}/crm.db
    streams:
      accounts: {{table: accounts, key: id, cursor: updated_at}}
  erp:
    type: sql
    url: sqlite:///{dir}/erp.db
    streams:
      customers: {{table: customers, key: crm_ref, id_column: id}}
"""
FLOW = """
flow: accounts
entity: Account
source: {connection: crm, stream: accounts, mapping: in.map.yaml}
target: {connection: erp, stream: customers, mapping: out.map.yaml}
"""
IN = """
mapping: account_in
direction: inbound
entity: Account
fields:
  name: {from: name}
  email: {from: email, transforms: [email]}
  billing_address.country: {from: country, transforms: [country]}
"""
OUT = """
mapping: customer_out
direction: outbound
entity: Account
fields:
  crm_ref: {from: id}
  name: {from: name}
  email: {from: email}
  country: {from: billing_address.country}
"""


def _databases(folder: Path) -> None:
    crm, erp = sa.MetaData(), sa.MetaData()
    sa.Table("accounts", crm, sa.Column("id", sa.String(20), primary_key=True),
             *(sa.Column(c, sa.String(100)) for c in ("name", "email", "country")),
             sa.Column("updated_at", sa.DateTime))
    sa.Table("customers", erp, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("crm_ref", sa.String(64), unique=True),
             *(sa.Column(c, sa.String(100)) for c in ("name", "email", "country")))
    for meta, name in ((crm, "crm.db"), (erp, "erp.db")):
        engine = sa.create_engine(f"sqlite:///{folder / name}")
        meta.create_all(engine)
        engine.dispose()


def _project(tmp_path: Path, *, databases: bool = True, **files: str) -> Path:
    project = tmp_path / "p"
    defaults = {"connections.yaml": CONNECTIONS.format(dir=tmp_path), "accounts.flow.yaml": FLOW,
                "in.map.yaml": IN, "out.map.yaml": OUT}
    for name, text in {**defaults, **files}.items():
        write(project / name, text)
    if databases:
        _databases(tmp_path)
    return project


def _lines(issues) -> list[str]:
    return [f"{Path(i.file).name}:{i.line}:{i.column}: {i.message}" for i in issues]


def test_the_valid_project_is_valid(tmp_path):
    assert validate_project(_project(tmp_path)) == []


def test_inbound_from_typo_against_the_reflected_source_table(tmp_path):
    project = _project(tmp_path, **{"in.map.yaml": IN.replace("from: email", "from: emial")})
    assert _lines(validate_project(project, reflect=True)) == [
        "in.map.yaml:6:17: 'from': stream crm.accounts has no field 'emial'; "
        "did you mean 'email'?"]
    assert validate_project(project, reflect=False) == []   # --offline: the files alone


def test_outbound_target_column_typo_against_the_reflected_table(tmp_path):
    project = _project(tmp_path, **{"out.map.yaml": OUT.replace("  country:", "  contry:")})
    assert _lines(validate_project(project, reflect=True)) == [
        "out.map.yaml:8:3: stream erp.customers has no field 'contry'; did you mean 'country'?"]


def test_outbound_from_typo_against_the_canonical_model(tmp_path):
    project = _project(tmp_path, **{"out.map.yaml": OUT.replace(
        "from: billing_address.country", "from: billing_adress.country")})
    assert _lines(validate_project(project)) == [
        "out.map.yaml:8:19: 'from' names unknown canonical field 'billing_adress.country' of "
        "Account; did you mean 'billing_address'?"]


def test_unknown_canonical_target_of_an_inbound_mapping(tmp_path):
    project = _project(tmp_path, **{"in.map.yaml": IN.replace("  email:", "  e_mail:")})
    issues = _lines(validate_project(project))
    assert len(issues) == 1
    assert issues[0].startswith("in.map.yaml:6:3: unknown canonical field 'e_mail' of Account")
    assert "did you mean 'email'?" in issues[0]


def test_unknown_canonical_field_inside_each(tmp_path):
    path = write(tmp_path / "o.map.yaml", """
        mapping: o
        direction: outbound
        entity: SalesOrder
        fields:
          lines: {from: lines, each: {sku: {from: product_cod}}}
        """)
    with pytest.raises(ConfigError) as info:
        load_mapping(path)
    assert _lines(info.value.issues) == [
        "o.map.yaml:5:43: 'from' names unknown canonical field 'product_cod' of "
        "SalesOrderLine; did you mean 'product_code'?"]


def test_archive_without_an_archive_setting_is_refused(tmp_path):
    project = _project(tmp_path, **{"accounts.flow.yaml": FLOW + "delete_policy: archive\n"})
    issues = _lines(validate_project(project, reflect=False))
    assert len(issues) == 1
    assert issues[0].startswith("accounts.flow.yaml:5:16: delete_policy 'archive': stream "
                                "'customers' of connection 'erp' cannot archive")
    with_archive = CONNECTIONS.replace(
        "id_column: id}}", "id_column: id, archive: {{column: name, value: x}}}}")
    fixed = _project(tmp_path, **{"accounts.flow.yaml": FLOW + "delete_policy: archive\n",
                                  "connections.yaml": with_archive.format(dir=tmp_path)})
    assert validate_project(fixed) == []


def _sf_project(tmp_path, policy: str, stream: str = "") -> Path:
    connections = CONNECTIONS.format(dir=tmp_path) + (
        "  sf:\n    type: salesforce\n    instance_url: https://example.my.salesforce.com\n"
        "    auth: {type: bearer, token: t}\n" + stream)
    flow = FLOW.replace("connection: erp, stream: customers",
                        "connection: sf, stream: accounts") + f"delete_policy: {policy}\n"
    return _project(tmp_path, **{"connections.yaml": connections, "accounts.flow.yaml": flow})


def test_delete_policy_on_a_connector_that_cannot_delete(tmp_path, monkeypatch):
    from crm2erp.connectors.base import Connector
    from crm2erp.connectors.salesforce import SalesforceConnector
    monkeypatch.setattr(SalesforceConnector, "delete", Connector.delete)  # as one without it
    issues = [i for i in _lines(validate_project(_sf_project(tmp_path, "delete")))
              if "delete_policy" in i]
    assert issues == ["accounts.flow.yaml:5:16: delete_policy 'delete': connector 'salesforce' "
                      "(connection 'sf') cannot delete or archive records; use "
                      "delete_policy: ignore"]


def test_a_crm_stream_archives_only_with_its_archive_setting(tmp_path):
    def issues(project):
        return [i for i in _lines(validate_project(project)) if "delete_policy" in i]
    assert issues(_sf_project(tmp_path, "delete")) == []
    assert issues(_sf_project(tmp_path, "archive")) == [
        "accounts.flow.yaml:5:16: delete_policy 'archive': stream 'accounts' of connection "
        "'sf' cannot archive; give the stream an 'archive:' setting in connections.yaml (see "
        "docs/connectors/salesforce.md), or use delete_policy: delete or ignore"]
    archiving = ("    streams:\n      accounts: {sobject: Account, fields: [Id, Name],\n"
                 "                 external_id_field: ERP_Id__c,\n"
                 "                 archive: {field: Active__c, value: false}}\n")
    assert issues(_sf_project(tmp_path, "archive", archiving)) == []


def test_declared_api_fields_are_checked_offline(tmp_path):
    """Salesforce declares the fields it selects: a mapping reading another is a typo."""
    connections = CONNECTIONS.format(dir=tmp_path) + (
        "  sf:\n    type: salesforce\n    instance_url: https://example.my.salesforce.com\n"
        "    auth: {type: bearer, token: t}\n"
        "    streams:\n      accounts: {sobject: Account, fields: [Id, Name, Phone]}\n")
    flow = FLOW.replace("connection: crm, stream: accounts", "connection: sf, stream: accounts")
    mapping = IN.replace("from: name", "from: Nmae").replace("from: email", "from: Phone")
    mapping = mapping.replace("from: country", "from: Name")
    project = _project(tmp_path, databases=False, **{
        "connections.yaml": connections, "accounts.flow.yaml": flow, "in.map.yaml": mapping})
    assert _lines(validate_project(project, reflect=False)) == [
        "in.map.yaml:5:16: 'from': stream sf.accounts has no field 'Nmae'; did you mean 'Name'?"]


def test_unknown_stream_is_named_with_a_hint(tmp_path):
    project = _project(tmp_path, **{"accounts.flow.yaml": FLOW.replace(
        "stream: customers", "stream: customer")})
    issues = _lines(validate_project(project))
    assert len(issues) == 1 and issues[0].startswith("accounts.flow.yaml:4:35: ")
    assert "no stream 'customer'" in issues[0] and "did you mean 'customers'?" in issues[0]


def test_unreachable_database_is_a_note_not_a_problem(tmp_path):
    project = _project(tmp_path, databases=False)
    notes: list[str] = []
    assert validate_project(project, reflect=True, notes=notes) == []
    assert len(notes) == 2 and all("not reached" in n for n in notes)
    assert not (tmp_path / "crm.db").exists()     # looking did not create it


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run(args, cwd=cwd, env={**os.environ, "COLUMNS": "250"})


def test_connector_settings_typo_has_its_position(tmp_path):
    """A REST stream's `has_mor:` is reported where it is, with the right key suggested."""
    rest = """
        connections:
          crm:
            type: rest
            base_url: https://api.example-crm.com
            streams:
              organizations:
                path: /v1/organizations
                records: data
                key: id
                paginator: {type: offset, limit: 100,
                            has_mor: additional_data.pagination.more_items_in_collection}
          erp:
            type: sqll
            url: sqlite:///erp.db
        """
    write(tmp_path / "p" / "connections.yaml", rest)
    expected = [
        "connections.yaml:11:21: unknown key 'has_mor' in "
        "connections.crm.streams.organizations.paginator; did you mean 'has_more'?",
        "connections.yaml:13:11: unknown connector type 'sqll'; did you mean 'sql'?"]
    assert _lines(validate_project(tmp_path / "p")) == expected
    single = _cli("mappings", "validate", "connections.yaml", cwd=tmp_path / "p")
    assert single.returncode == 2
    assert single.stdout.splitlines()[:2] == expected


def test_cli_offline_skips_the_database_and_online_reports_the_typo(tmp_path):
    project = _project(tmp_path, **{"in.map.yaml": IN.replace("from: email", "from: emial")})
    online = _cli("-p", str(project), "mappings", "validate", cwd=tmp_path)
    assert online.returncode == 2
    assert "in.map.yaml:6:17: 'from': stream crm.accounts has no field 'emial'" in online.stdout
    offline = _cli("-p", str(project), "mappings", "validate", "--offline", cwd=tmp_path)
    assert offline.returncode == 0, offline.stdout
    assert offline.stdout.strip() == "ok: 4 file(s) valid"

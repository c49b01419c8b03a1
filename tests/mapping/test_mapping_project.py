"""Projects: a directory of connections, flows and mappings, checked together."""

from __future__ import annotations

import pytest

from crm2erp.errors import ConfigError
from crm2erp.mapping import load_project, validate_project
from tests.mapping.helpers import write

CONNS = """
connections:
  crm: {type: sql, url: "sqlite:///${DEMO_DIR:-/tmp}/crm.db"}
  erp: {type: file, path: /tmp/erp}
"""

IN_MAP = """
mapping: {name}
direction: inbound
entity: {entity}
fields:
  id: {{from: id}}
"""

OUT_MAP = IN_MAP.replace("inbound", "outbound")

FLOW = """
flow: {name}
entity: {entity}
source: {{connection: {src}, stream: s, mapping: maps/{name}.in.map.yaml}}
target: {{connection: erp, stream: t, mapping: maps/{name}.out.map.yaml}}
depends_on: {deps}
"""


def _flow(root, name, *, entity="Account", src="crm", deps="[]", maps=True, sub="flows"):
    write(root / sub / f"{name}.flow.yaml",
          FLOW.format(name=name, entity=entity, src=src, deps=deps))
    if maps:
        write(root / sub / "maps" / f"{name}.in.map.yaml", IN_MAP.format(name=name + "_in",
                                                                          entity=entity))
        write(root / sub / "maps" / f"{name}.out.map.yaml", OUT_MAP.format(name=name + "_out",
                                                                            entity=entity))


@pytest.fixture
def project_dir(tmp_path):
    write(tmp_path / "connections.yaml", CONNS)
    _flow(tmp_path, "accounts")
    _flow(tmp_path, "contacts", entity="Contact", deps="[accounts]", sub="flows/deep")
    return tmp_path


def test_valid_project_loads(project_dir):
    assert validate_project(project_dir, env={}) == []
    project = load_project(project_dir, env={"DEMO_DIR": "/data"})
    assert sorted(project.flows) == ["accounts", "contacts"]
    assert project.connections["crm"].settings["url"] == "sqlite:////data/crm.db"
    flow = project.flows["contacts"]
    spec = project.mapping(flow.source_mapping_path)
    assert spec.name == "contacts_in" and spec.entity == "Contact"
    assert project.mapping("flows/deep/maps/contacts.in.map.yaml") is spec
    assert [f.name for f in project.ordered_flows()] == ["accounts", "contacts"]
    with pytest.raises(ConfigError, match="did you mean 'contacts'"):
        project.flow("contact")


def _messages(root):
    return [(i.file.rsplit("/", 1)[-1], i.line, i.column, i.message)
            for i in validate_project(root, env={})]


def test_unknown_connection(project_dir):
    _flow(project_dir, "products", entity="Product", src="crn")
    [issue] = _messages(project_dir)
    assert issue == ("products.flow.yaml", 3, 22,
                     "flow 'products' uses unknown connection 'crn'; did you mean 'crm'?")


def test_missing_mapping_file(project_dir):
    _flow(project_dir, "products", entity="Product", maps=False)
    issues = _messages(project_dir)
    assert [(f, line, col) for f, line, col, _ in issues] == [
        ("products.flow.yaml", 3, 47), ("products.flow.yaml", 4, 47)]
    assert "products.in.map.yaml not found" in issues[0][3]


def test_entity_and_direction_mismatch(project_dir):
    maps = project_dir / "flows" / "maps"
    write(maps / "accounts.in.map.yaml", IN_MAP.format(name="x", entity="Contact"))
    write(maps / "accounts.out.map.yaml", IN_MAP.format(name="y", entity="Account"))
    issues = _messages(project_dir)
    assert len(issues) == 2
    assert issues[0][1:3] == (3, 47)
    assert "mapping 'x' maps entity 'Contact' but flow 'accounts' syncs 'Account'" in issues[0][3]
    assert issues[1][1:3] == (4, 47)
    assert "the target mapping must be outbound, but 'y' is inbound" in issues[1][3]


def test_depends_on_unknown_and_cycle(project_dir):
    _flow(project_dir, "orders", entity="SalesOrder", deps="[acounts, invoices]")
    _flow(project_dir, "invoices", entity="Invoice", deps="[orders]")
    issues = _messages(project_dir)
    messages = [m for *_, m in issues]
    assert ("orders.flow.yaml", 5, 14,
            "flow 'orders' depends on unknown flow 'acounts'; did you mean 'accounts'?") in issues
    assert sum("goes round in a circle" in m for m in messages) == 1
    assert len(issues) == 2


def test_duplicate_flow_names(project_dir):
    write(project_dir / "other" / "dup.flow.yaml",
          (project_dir / "flows" / "accounts.flow.yaml").read_text()
          .replace("maps/", "../flows/maps/"))
    issues = _messages(project_dir)
    assert len(issues) == 1
    file, line, col, message = issues[0]
    assert (line, col) == (1, 7)
    assert "flow name 'accounts' is already used by" in message


def test_broken_files_are_all_reported(project_dir):
    write(project_dir / "flows" / "maps" / "accounts.in.map.yaml",
          IN_MAP.format(name="a", entity="Account").replace("{from: id}", "{from: id, x: 1}"))
    write(project_dir / "unused.map.yaml", "mapping: [\n")
    write(project_dir / "bad.flow.yaml", "flow: b\nentity: Account\n")
    issues = _messages(project_dir)
    files = sorted({f for f, *_ in issues})
    assert files == ["accounts.in.map.yaml", "bad.flow.yaml", "unused.map.yaml"]
    with pytest.raises(ConfigError) as info:
        load_project(project_dir, env={})
    assert len(info.value.issues) == len(issues)


def test_missing_connections_file_and_env_var(tmp_path):
    _flow(tmp_path, "accounts")
    [issue] = _messages(tmp_path)
    assert "no connections.yaml" in issue[3]
    write(tmp_path / "connections.yaml", CONNS.replace("${DEMO_DIR:-/tmp}", "${DEMO_DIR}"))
    [issue] = _messages(tmp_path)
    assert issue[:3] == ("connections.yaml", 2, 25)
    assert "'DEMO_DIR' is not set" in issue[3]

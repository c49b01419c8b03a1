"""Loading single files: every problem collected, each with file:line:column."""

from __future__ import annotations

import pytest

from crm2erp.errors import ConfigError
from crm2erp.mapping import load_connections, load_flow, load_mapping
from tests.mapping.helpers import write

GOOD_MAPPING = """
mapping: crm_account_in
direction: inbound
entity: Account
where: {field: stage, equals: won}
fields:
  id: {from: id, required: true}
  name: {from: company_name, transforms: [strip, collapse_spaces]}
  type:
    from: kind
    transforms:
      - value_map: {map: {Customer: customer}, on_missing: keep}
"""


def _issues(path, loader=load_mapping, **kw):
    with pytest.raises(ConfigError) as info:
        loader(path, **kw)
    assert str(path) in str(info.value)
    return [(i.line, i.column, i.message) for i in info.value.issues]


def test_good_mapping_loads(tmp_path):
    spec = load_mapping(write(tmp_path / "a.map.yaml", GOOD_MAPPING))
    assert spec.name == "crm_account_in" and spec.entity == "Account"
    assert spec.source_file == (tmp_path / "a.map.yaml").resolve()
    assert list(spec.fields) == ["id", "name", "type"]
    assert spec.fields["id"].required is True


def test_misspelt_key_reported_at_key_with_suggestion(tmp_path):
    path = write(tmp_path / "a.map.yaml", GOOD_MAPPING.replace("  name: {from:", "  name: {form:"))
    issues = _issues(path)
    assert issues == [(7, 10, "unknown key 'form' in fields.name; did you mean 'from'?")]


def test_misspelt_top_level_key(tmp_path):
    path = write(tmp_path / "a.map.yaml", GOOD_MAPPING.replace("where:", "wehre:"))
    assert _issues(path) == [(4, 1, "unknown key 'wehre' in the file; did you mean 'where'?")]


def test_wrong_type_reported_at_value(tmp_path):
    path = write(tmp_path / "a.map.yaml", GOOD_MAPPING.replace("required: true",
                                                               "required: [1]"))
    [(line, col, message)] = _issues(path)
    assert (line, col) == (6, 28)
    assert message.startswith("fields.id.required: expected a valid boolean")


def test_all_problems_are_collected(tmp_path):
    text = """
    mapping: m
    direction: sideways
    entity: Acount
    fields:
      a: {from: 5}
      b: {from: b, transforms: [strp, {decimal: {placs: 2}}, {truncate: -1}]}
      c: {from: c, when: {field: x, equalz: 1}}
    """
    issues = _issues(write(tmp_path / "m.map.yaml", text))
    assert [(line, col) for line, col, _ in issues] == [
        (2, 12), (3, 9), (5, 13), (6, 29), (6, 46), (6, 69), (7, 33)]
    text_all = "\n".join(m for _, _, m in issues)
    assert "did you mean 'Account'?" in text_all
    assert "fields.a.from: expected a valid string or expected a valid list" in text_all
    assert "unknown transform 'strp'; did you mean 'strip'?" in text_all
    assert "transform 'decimal' has no argument 'placs'; did you mean 'places'?" in text_all
    assert "transform 'truncate' argument 'length'" in text_all
    assert "unknown key 'equalz' in fields.c.when; did you mean 'equals'?" in text_all


def test_unknown_transform_at_bare_name_position(tmp_path):
    path = write(tmp_path / "a.map.yaml", GOOD_MAPPING.replace("collapse_spaces", "colapse"))
    [(line, col, message)] = _issues(path)
    assert (line, col) == (7, 50)
    assert message == "unknown transform 'colapse'; did you mean 'collapse_spaces'?"


def test_transform_needing_arguments(tmp_path):
    path = write(tmp_path / "a.map.yaml", GOOD_MAPPING.replace("[strip, collapse_spaces]",
                                                               "[replace]"))
    [(line, col, message)] = _issues(path)
    assert (line, col) == (7, 43)
    assert message == "transform 'replace' needs argument 'old'"


def test_yaml_syntax_error_in_mapping(tmp_path):
    path = write(tmp_path / "a.map.yaml", "mapping: m\nfields: {a: {from: x}\n")
    [(line, col, message)] = _issues(path)
    assert line == 3 and col is not None
    assert message.startswith("YAML syntax error")


def test_empty_and_non_mapping_files(tmp_path):
    assert _issues(write(tmp_path / "e.map.yaml", "# nothing\n")) == [
        (1, 1, "the file is empty")]
    [(_, _, message)] = _issues(write(tmp_path / "l.map.yaml", "- a\n- b\n"))
    assert "expected a mapping at the top of the file" in message


def test_missing_file(tmp_path):
    assert _issues(tmp_path / "none.map.yaml") == [(None, None, "file not found")]


FLOW = """
flow: demo_accounts
entity: Account
source: {connection: crm, stream: accounts, mapping: maps/in.map.yaml}
target: {connection: erp, stream: customers, mapping: ../out.map.yaml}
incremental: {cursor: updated_at, lookback: 5m}
depends_on: []
"""


def test_flow_loads_with_resolved_paths(tmp_path):
    flow = load_flow(write(tmp_path / "flows" / "a.flow.yaml", FLOW))
    assert flow.name == "demo_accounts"
    assert flow.source_mapping_path == (tmp_path / "flows" / "maps" / "in.map.yaml").resolve()
    assert flow.target_mapping_path == (tmp_path / "out.map.yaml").resolve()
    assert flow.incremental.lookback.total_seconds() == 300
    assert flow.incremental.batch_size == 500
    assert flow.delete_policy == "ignore" and flow.enabled is True


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("2h", 7200), ("1d", 86400)])
def test_lookback_units(tmp_path, text, seconds):
    flow = load_flow(write(tmp_path / "a.flow.yaml", FLOW.replace("5m", text)))
    assert flow.incremental.lookback.total_seconds() == seconds


def test_flow_errors(tmp_path):
    text = FLOW.replace("5m", "5 minutes").replace("depends_on: []", "delete_policy: purge")
    issues = _issues(write(tmp_path / "a.flow.yaml", text), loader=load_flow)
    assert [(line, col) for line, col, _ in issues] == [(5, 45), (6, 16)]
    assert "expected a duration like '30s'" in issues[0][2]
    assert "expected 'ignore', 'archive' or 'delete'" in issues[1][2]


CONNS = """
connections:
  crm:
    type: sql
    url: sqlite:///${DEMO_DIR}/crm.db
    streams: {accounts: {table: accounts}}
  erp:
    type: file
    path: ${ERP_DIR:-/tmp/erp}
"""


def test_connections_load_with_env(tmp_path):
    conns = load_connections(write(tmp_path / "connections.yaml", CONNS), env={"DEMO_DIR": "/d"})
    assert set(conns) == {"crm", "erp"}
    assert conns["crm"].type == "sql"
    assert conns["crm"].settings == {"url": "sqlite:////d/crm.db",
                                     "streams": {"accounts": {"table": "accounts"}}}
    assert conns["crm"].line == 2 and conns["erp"].line == 6
    assert conns["erp"].settings == {"path": "/tmp/erp"}


def test_connections_missing_env_var_and_missing_type(tmp_path):
    text = CONNS.replace("    type: file\n", "")
    issues = _issues(write(tmp_path / "connections.yaml", text), loader=load_connections, env={})
    assert issues == [
        (4, 10, "environment variable 'DEMO_DIR' is not set; export it or write "
                "${DEMO_DIR:-default}"),
        (7, 5, "connections.erp: missing required key 'type'"),
    ]


FULL_FLOW = """
flow: demo_accounts
description: CRM accounts become ERP customers.
entity: Account
source: {connection: crm, stream: accounts, mapping: maps/crm_account.in.map.yaml}
target: {connection: erp, stream: customers, mapping: maps/erp_customer.out.map.yaml}
incremental: {cursor: updated_at, lookback: 5m, batch_size: 500}
delete_policy: archive
depends_on: [other]
write_back: {connection: crm, stream: accounts, field: erp_customer_id}
schedule: "@hourly"
tags: [demo]
owner: integration
enabled: false
quality: [{expect: not_null, field: name}]
dedupe: null
ownership: {email: crm}
"""


def test_every_flow_key_is_accepted(tmp_path):
    flow = load_flow(write(tmp_path / "f.flow.yaml", FULL_FLOW))
    assert flow.write_back.field == "erp_customer_id"
    assert flow.delete_policy == "archive" and flow.enabled is False
    assert flow.depends_on == ["other"] and flow.ownership == {"email": "crm"}
    assert flow.quality.rules[0].expect == "not_null" and flow.quality.rules[0].column == "name"
    assert flow.schedule == "@hourly" and flow.dedupe is None

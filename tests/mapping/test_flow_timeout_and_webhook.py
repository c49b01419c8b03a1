"""``timeout:`` and ``on_dead_letters:`` of a flow: parsed, or refused at file:line:col."""

from __future__ import annotations

import datetime as dt

import pytest

from crm2erp.errors import ConfigError
from crm2erp.mapping import load_flow

FLOW = """\
flow: accounts
entity: Account
source: {connection: crm, stream: accounts, mapping: a.map.yaml}
target: {connection: erp, stream: customers, mapping: b.map.yaml}
"""


def test_timeout_and_webhook_are_read(tmp_path):
    path = tmp_path / "a.flow.yaml"
    path.write_text(FLOW + "timeout: 2h\non_dead_letters: https://hooks.example.com/x?k=1\n")
    flow = load_flow(path)
    assert flow.timeout == dt.timedelta(hours=2)
    assert flow.on_dead_letters == "https://hooks.example.com/x?k=1"


@pytest.mark.parametrize("line,message", [
    ("timeout: 0s", "5:10: timeout: timeout must be longer than 0"),
    ("timeout: soon", "5:10: timeout: expected a duration like '30s'"),
    ("on_dead_letters: mailto:ops@example.com", "5:18: on_dead_letters: expected an http://"),
])
def test_bad_values_name_file_line_and_column(tmp_path, line, message):
    path = tmp_path / "a.flow.yaml"
    path.write_text(FLOW + line + "\n")
    with pytest.raises(ConfigError) as refused:
        load_flow(path)
    assert f"{path}:{message}" in str(refused.value)

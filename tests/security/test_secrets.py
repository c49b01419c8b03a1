"""Our own credentials never reach the terminal, even with --debug; data is not masked."""

from __future__ import annotations

import logging
import socket
import textwrap

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from crm2erp.redact import RedactingFilter, redact
from tests.security.project import make_project, run

TOKEN = "tk-93f1c0ffee-secret"        # only in the environment
PASSWORD = "Pw-7777-only-in-yaml"     # written in connections.yaml itself


@pytest.fixture(autouse=True)
def _wide(monkeypatch):
    from crm2erp.cli import output

    monkeypatch.setattr(output.console, "width", 1000)
    monkeypatch.setattr(output.err_console, "width", 1000)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_secrets_never_appear_with_debug(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEC_API_TOKEN", TOKEN)
    port = _closed_port()
    rest = textwrap.indent(textwrap.dedent(f"""\
          api:
            type: rest
            base_url: http://bot:{PASSWORD}@127.0.0.1:{port}/v1
            retry: {{max_attempts: 1}}
            streams:
              organizations:
                path: /organizations
                params: {{api_token: "${{SEC_API_TOKEN}}", limit: "5"}}
                records: data
                key: id
        """), "  ")
    p = make_project(tmp_path, [], extra_connections=rest)
    (p["project"] / "orgs.flow.yaml").write_text(textwrap.dedent("""\
        flow: orgs
        entity: Account
        source: {connection: api, stream: organizations, mapping: in.map.yaml}
        target: {connection: erp, stream: customers, mapping: out.map.yaml}
        """), encoding="utf-8")
    code, out, err = run(capsys, "--debug", "-v", *p["args"], "sync", "run", "orgs")
    text = out + err
    assert code != 0 and "Traceback" in text          # --debug shows where, redacted
    assert TOKEN not in text and PASSWORD not in text
    assert "***" in text and f"127.0.0.1:{port}" in text


def test_state_url_credentials_are_redacted_and_a_bad_port_exits_2(tmp_path, capsys):
    url = f"postgresql://crm2erp:{PASSWORD}@db.example:54x2/erp?password={TOKEN}&app=x"
    for debug in ([], ["--debug"]):
        code, out, err = run(capsys, *debug, "--state", url, "dlq", "list")
        assert code == 2 and "port is not a number" in err
        assert PASSWORD not in out + err and TOKEN not in out + err
        assert "app=x" in err and "db.example" in err


def test_redact_masks_url_credentials_and_registered_values_only():
    from crm2erp.redact import register_secret

    register_secret("registered-value-123")
    assert redact("note: password=hunter2; API token: tok-123") == \
        "note: password=hunter2; API token: tok-123"              # data, not our secret
    assert redact("GET https://u:pw1@h/x?access_token=abc&page=2 failed") == \
        "GET https://u:***@h/x?access_token=***&page=2 failed"
    assert redact("with registered-value-123 inside") == "with *** inside"


def test_logged_tracebacks_are_redacted():
    from crm2erp.redact import register_secret

    register_secret("logged-secret-456")
    try:
        raise RuntimeError("boom with logged-secret-456")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed: %s",
                                   ("logged-secret-456",), exc_info=True)
        import sys

        record.exc_info = sys.exc_info()
    RedactingFilter().filter(record)
    rendered = logging.Formatter().format(record)
    assert "logged-secret-456" not in rendered and "boom with ***" in rendered


def test_connections_yaml_registers_its_secrets_and_env_values(tmp_path):
    from crm2erp.mapping import load_connections

    path = tmp_path / "connections.yaml"
    path.write_text(textwrap.dedent("""\
        connections:
          crm:
            type: rest
            base_url: https://crm.example/api?apikey=${CRM_KEY_X}
            auth: {type: bearer, token: "${CRM_BEARER}"}
            streams: {a: {path: /a, key: id}}
          db:
            type: sql
            url: postgresql://u:${DB_PASS_X}@db/erp
            streams: {t: {table: t, key: id}}
          plain:
            type: sql
            url: sqlite:///${DATA_DIR_X}/x.db
            streams: {t: {table: t, key: id}}
        """), encoding="utf-8")
    load_connections(path, env={"CRM_KEY_X": "key-value-1", "CRM_BEARER": "bearer-value-2",
                                "DB_PASS_X": "db-pass-value-3", "DATA_DIR_X": "/srv/data"})
    text = "key-value-1 bearer-value-2 db-pass-value-3 /srv/data"
    assert redact(text) == "*** *** *** /srv/data"     # a plain folder is not a secret


@given(st.text())
def test_business_text_without_urls_is_never_rewritten(text):
    assume("://" not in text)
    assert redact(text) == text


@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(["\udcff", "\x9b"])))
def test_terminal_text_never_carries_control_characters(text):
    from crm2erp.cli.output import plain

    shown = plain(text)
    assert not [c for c in shown if (ord(c) < 32 and c not in "\n\t") or 127 <= ord(c) < 160
                or 0xD800 <= ord(c) < 0xE000 or c in "\u202a\u202b\u202c\u202d\u202e"]
    if text.isprintable():
        assert shown == text

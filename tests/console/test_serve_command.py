"""``crm2erp serve`` as documented: its help, the bind check, and the documented
command giving the app over the demo project's own state store."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from crm2erp.console import PASSWORD_ENV, allowed_hosts, check_bind, is_loopback
from crm2erp.errors import ConfigError
from tests.clirunner import run

DOCS = Path(__file__).resolve().parents[2] / "docs"


def crm2erp(*args, cwd, env=None) -> subprocess.CompletedProcess:
    """``crm2erp ARGS`` without the console password, run in this process as a child
    process sees it (:mod:`tests.clirunner`)."""
    clean = {k: v for k, v in os.environ.items() if k != PASSWORD_ENV}
    return run(args, cwd=cwd, env={**clean, **(env or {}), "COLUMNS": "200"})


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("localhost", True),
                                           ("::1", True), ("127.3.4.5", True),
                                           ("0.0.0.0", False), ("192.168.1.4", False),
                                           ("::", False), ("console.example", False)])
def test_only_loopback_counts_as_local(host, loopback):
    assert is_loopback(host) is loopback


def test_the_hosts_answered():
    assert "localhost" in allowed_hosts("127.0.0.1") and "::1" in allowed_hosts("localhost")
    assert "attacker.example" not in allowed_hosts("127.0.0.1")
    assert allowed_hosts("0.0.0.0") is None       # any name: the password guards it


def test_a_public_bind_needs_a_password():
    with pytest.raises(ConfigError, match=PASSWORD_ENV):
        check_bind("0.0.0.0", None)
    with pytest.raises(ConfigError):
        check_bind("0.0.0.0", "")
    check_bind("0.0.0.0", "s3cret")
    check_bind("127.0.0.1", None)


def test_serve_help_and_refusal_without_password(tmp_path, monkeypatch):
    from crm2erp.console import app

    listened = []   # a serve that got past the check would listen here, not on a port
    monkeypatch.setattr(app, "listen", lambda *args, **kwargs: listened.append(args))
    helped = crm2erp("serve", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "--host" in helped.stdout and "--port" in helped.stdout
    refused = crm2erp("serve", "--host", "0.0.0.0", cwd=tmp_path)
    assert refused.returncode == 2
    assert PASSWORD_ENV in refused.stderr and "0.0.0.0" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert listened == []


def _documented_command() -> list[str]:
    section = (DOCS / "steward-guide.md").read_text().split("## The console", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = [line for line in block.splitlines() if line.startswith("crm2erp ")]
    assert len(lines) == 1, lines
    return lines[0].split("#", 1)[0].split()


def test_the_documented_command_serves_the_demo_projects_store(tmp_path, monkeypatch,
                                                               demo_copies):
    """The guide's command, run after `crm2erp demo` in the same folder: the app it
    would serve (started here through TestClient, not a socket) shows the demo."""
    import uvicorn
    from starlette.testclient import TestClient

    from crm2erp.cli import main
    demo_copies(tmp_path / "crm2erp-demo")
    monkeypatch.chdir(tmp_path)
    for name in ("CRM2ERP_PROJECT", "CRM2ERP_STATE_URL", PASSWORD_ENV):
        monkeypatch.delenv(name, raising=False)
    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    argv = _documented_command()
    assert argv[0] == "crm2erp" and "serve" in argv
    assert main(argv[1:]) == 0
    assert (served["host"], served["port"]) == ("127.0.0.1", 8765)
    with TestClient(served["app"], base_url="http://127.0.0.1:8765") as client:
        page = client.get("/")
    shown = " ".join(re.sub(r"<[^>]+>", "", page.text).split())
    # on loopback it answers only loopback names: no DNS rebinding from a web page
    with TestClient(served["app"], base_url="http://attacker.example:8765") as client:
        assert client.get("/").status_code == 400
    with TestClient(served["app"], base_url="http://localhost:8765") as client:
        assert client.get("/").status_code == 200
    assert page.status_code == 200 and "demo_accounts: 5 dead letter(s) to fix" in shown
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm2erp-demo"]   # no second store

"""A real trytond for the Tryton connector tests.

``tryton_template`` builds, once per machine, an SQLite Tryton database
ready to sell and invoice (``scripts/tryton_devdb.py``: modules, company in
EUR, chart of accounts, fiscal year, payment term, category ``Goods``,
products ``P-WIDGET`` 10.00 and ``P-GADGET`` 25.50). ``tryton_server``
copies it and serves the copy with ``trytond`` on a free loopback port for
the session; tests keep apart by using unique keys.
A server that does not come up fails the tests loudly: nothing skips.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from crm2erp.connectors.tryton import TrytonConfig, TrytonConnector
from crm2erp.testing.once import build_once, installed_key, kept_folder

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "tryton_devdb.py"
DB = "crm2erp"
PASSWORD = "admin-secret-42"
START_TIMEOUT = 90.0


@dataclass(frozen=True)
class TrytonServer:
    url: str
    database: str
    username: str
    password: str
    directory: Path

    def settings(self, **overrides) -> dict:
        """Connection settings (as in connections.yaml) for this server."""
        return {"url": self.url, "database": self.database, "username": self.username,
                "password": self.password, "product_defaults": {"category": "Goods"},
                "retry": {"max_attempts": 2, "backoff_base": 0.05}, **overrides}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def tryton_template(tmp_path_factory) -> Path:
    """A directory holding the prepared template database, built by one xdist worker
    while the others wait, and kept for later test runs on this machine
    (``kept_folder``, ~40 s of CPU saved each) while scripts/tryton_devdb.py, the
    installed packages and the year (the script opens the current fiscal year) stay
    the same; tests only ever serve copies of it."""
    key = installed_key(SCRIPT.read_text(), f"fiscal year {dt.date.today().year}")
    return build_once(kept_folder("tryton-template", key), key, _build_template)


def _build_template(directory: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--dir", str(directory), "--db", DB,
                           "--password", PASSWORD], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"could not create the Tryton test database (exit {proc.returncode}):\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}", pytrace=False)
    log.info("tryton template database built in %.1fs", time.monotonic() - started)


def _copy(template: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in (f"{DB}.sqlite", "trytond.conf"):
        shutil.copy2(template / name, target / name)
    conf = target / "trytond.conf"
    conf.write_text(conf.read_text().replace(f"path = {template}", f"path = {target}"))
    return conf


def _wait_until_up(proc: subprocess.Popen, url: str, logfile: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    body = {"id": 0, "method": "common.db.login",
            "params": ["admin", {"password": PASSWORD}, "en"]}
    problem = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"trytond exited with code {proc.returncode} before answering; "
                        f"its log:\n{logfile.read_text()[-4000:]}", pytrace=False)
        try:
            resp = requests.post(f"{url}/{DB}/rpc/", json=body, timeout=5)
            if resp.status_code == 200 and "result" in resp.json():
                return
            problem = f"HTTP {resp.status_code}: {resp.text[:200]}"
        except requests.RequestException as exc:
            problem = str(exc)
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"trytond did not answer a login at {url} within {START_TIMEOUT:.0f}s "
                f"({problem}); its log:\n{logfile.read_text()[-4000:]}", pytrace=False)


@pytest.fixture(scope="session")
def tryton_server(tryton_template, tmp_path_factory):
    """A running trytond serving a copy of the template database; yields TrytonServer."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import tryton_devdb
    finally:
        sys.path.remove(str(SCRIPT.parent))
    directory = tmp_path_factory.mktemp("tryton-server")
    conf = _copy(tryton_template, directory)
    port = _free_port()
    # No DNS in CI: keep Tryton's e-mail check to the syntax (see the script). The
    # tests log in some 60 times: argon2 at its lowest cost makes a login ~1 ms of
    # trytond's CPU instead of ~0.25 s (about 15 s of CPU a session).
    logfile = directory / "trytond.log"
    with logfile.open("w") as out:
        proc = tryton_devdb.serve(conf, DB, port, email_dns=False, cheap_passwords=True,
                                  output=out)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, url, logfile)
        yield TrytonServer(url, DB, "admin", PASSWORD, directory)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def tryton_config(tryton_server) -> TrytonConfig:
    return TrytonConfig.model_validate(tryton_server.settings())


@pytest.fixture
def tryton(tryton_config):
    """A TrytonConnector logged in to the test server."""
    connector = TrytonConnector(tryton_config)
    yield connector
    connector.close()

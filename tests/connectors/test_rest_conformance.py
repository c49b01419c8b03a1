"""The declarative REST connector, configured by the YAML of docs/connectors/rest.md,
against the conformance suite and the Pipedrive-like demo API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crm2erp.connectors import create_connector
from crm2erp.emulators.rest.app import CLIENT_ID, CLIENT_SECRET, make_app
from crm2erp.mapping import load_connections
from crm2erp.testing.conformance import ConnectorConformance

DOC = Path(__file__).resolve().parents[2] / "docs" / "connectors" / "rest.md"


def doc_connections(tmp_path: Path, env: dict[str, str]):
    """The first ```yaml block of the docs page, loaded like a project's connections.yaml."""
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    path = tmp_path / "connections.yaml"
    path.write_text(block, encoding="utf-8")
    return load_connections(path, env)


def crm_connector(tmp_path, base_url, secret=CLIENT_SECRET):
    env = {"DEMO_CRM_URL": base_url, "DEMO_CRM_CLIENT_ID": CLIENT_ID,
           "DEMO_CRM_CLIENT_SECRET": secret, "DEMO_ERP_URL": "sqlite://"}
    spec = doc_connections(tmp_path, env)["crm"]
    return create_connector(spec.type, dict(spec.settings))


@pytest.fixture
def emulator(serve):
    # 130 organizations = 3 pages of 50; 6 share each update_time
    app = make_app(seed=3, organizations=130)
    return serve(app)


@pytest.fixture
def connector(emulator, tmp_path):
    with crm_connector(tmp_path, emulator.base_url) as conn:
        yield conn


@pytest.fixture
def bad_connector(emulator, tmp_path):
    with crm_connector(tmp_path, emulator.base_url, secret="wrong") as conn:
        yield conn


class TestRestConformance(ConnectorConformance):
    read_stream = "organizations"
    write_stream = "organizations"

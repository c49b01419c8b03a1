"""Dynamics 365 / Dataverse against the connector conformance suite, over a loopback emulator."""

from __future__ import annotations

import pytest

from crm2erp.connectors.dynamics import DynamicsConfig, DynamicsConnector
from crm2erp.emulators.dynamics.app import CLIENT_ID, CLIENT_SECRET, TENANT_ID, make_app
from crm2erp.testing.conformance import ConnectorConformance


def d365_config(base_url: str, secret: str = CLIENT_SECRET, **extra) -> DynamicsConfig:
    return DynamicsConfig.model_validate({
        "type": "dynamics", "environment_url": base_url, "tenant_id": TENANT_ID,
        "authority_url": base_url, "page_size": 100,
        "auth": {"type": "client_credentials", "client_id": CLIENT_ID, "client_secret": secret},
        "retry": {"max_attempts": 5, "backoff_base": 0.001, "backoff_max": 0.01},
        **extra})


@pytest.fixture
def emulator(serve):
    # 450 accounts = 5 pages of 100; 7 rows share each modifiedon second
    app = make_app(seed=7, accounts=450, contacts_per_account=1, products_per_opportunity=1)
    return serve(app)


@pytest.fixture
def connector(emulator):
    with DynamicsConnector(d365_config(emulator.base_url)) as conn:
        yield conn


@pytest.fixture
def bad_connector(emulator):
    with DynamicsConnector(d365_config(emulator.base_url, secret="wrong-secret")) as conn:
        yield conn


class TestDynamicsConformance(ConnectorConformance):
    read_stream = "accounts"
    write_stream = "accounts"


class TestDynamicsContactsConformance(ConnectorConformance):
    """Contacts: a custom alternate key and a lookup written with @odata.bind."""

    read_stream = "contacts"
    write_stream = "contacts"

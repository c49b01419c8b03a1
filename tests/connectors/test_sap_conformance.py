"""SAP S/4HANA against the connector conformance suite, over a real loopback emulator."""

from __future__ import annotations

import pytest

from crm2erp.connectors.sap import SapConfig, SapConnector
from crm2erp.emulators.sap.app import PASSWORD, USERNAME, make_app
from crm2erp.testing.conformance import ConnectorConformance


def sap_config(base_url: str, password: str = PASSWORD, **extra) -> SapConfig:
    return SapConfig.model_validate({
        "type": "sap", "base_url": base_url, "sap_client": "100",
        "auth": {"type": "basic", "username": USERNAME, "password": password},
        "retry": {"max_attempts": 5, "backoff_base": 0.001, "backoff_max": 0.01},
        **extra})


@pytest.fixture
def emulator(serve):
    # 130 partners = 3 pages of 50; 7 partners share each change stamp; every
    # sixth was never changed (empty LastChangeDate) and is read by CreationDate
    app = make_app(seed=7, business_partners=130, sales_orders=12, billing_documents=8,
                   requirements=6, page_size=50)
    return serve(app)


@pytest.fixture
def connector(emulator):
    with SapConnector(sap_config(emulator.base_url)) as conn:
        yield conn


@pytest.fixture
def bad_connector(emulator):
    with SapConnector(sap_config(emulator.base_url, password="wrong")) as conn:
        yield conn


class TestSapConformance(ConnectorConformance):
    read_stream = "business_partners"
    write_stream = "business_partners"

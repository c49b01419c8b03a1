"""ERPNext against the connector conformance suite, over a real loopback emulator."""

from __future__ import annotations

import pytest

from crm2erp.connectors.erpnext import ErpNextConfig, ErpNextConnector
from crm2erp.emulators.erpnext.app import API_KEY, API_SECRET, make_app
from crm2erp.testing.conformance import ConnectorConformance


def erp_config(base_url: str, secret: str = API_SECRET, **extra) -> ErpNextConfig:
    return ErpNextConfig.model_validate({
        "type": "erpnext", "base_url": base_url, "page_size": 50,
        "auth": {"type": "frappe_token", "api_key": API_KEY, "api_secret": secret},
        "retry": {"max_attempts": 5, "backoff_base": 0.001, "backoff_max": 0.01},
        **extra})


@pytest.fixture
def emulator(serve):
    # 130 customers = 3 pages of 50; 7 customers share each `modified` value
    app = make_app(seed=7, customers=130, sales_invoices=12)
    return serve(app)


@pytest.fixture
def connector(emulator):
    with ErpNextConnector(erp_config(emulator.base_url)) as conn:
        yield conn


@pytest.fixture
def bad_connector(emulator):
    with ErpNextConnector(erp_config(emulator.base_url, secret="wrong")) as conn:
        yield conn


class TestErpNextConformance(ConnectorConformance):
    read_stream = "customers"
    write_stream = "customers"

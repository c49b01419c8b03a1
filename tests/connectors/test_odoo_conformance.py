"""Odoo against the connector conformance suite, over a real loopback emulator."""

from __future__ import annotations

import pytest

from crm2erp.connectors.odoo import OdooConfig, OdooConnector
from crm2erp.emulators.odoo.app import DATABASE, PASSWORD, USERNAME, make_app
from crm2erp.testing.conformance import ConnectorConformance


def odoo_config(base_url: str, password: str = PASSWORD, **extra) -> OdooConfig:
    return OdooConfig.model_validate({
        "type": "odoo", "url": base_url, "database": DATABASE, "username": USERNAME,
        "password": password, "page_size": 50,
        "retry": {"max_attempts": 5, "backoff_base": 0.001, "backoff_max": 0.01},
        **extra})


@pytest.fixture
def emulator(serve):
    # 120 companies = 3 pages of 50; 7 partners share each write_date
    app = make_app(seed=7, companies=120)
    return serve(app)


@pytest.fixture
def connector(emulator):
    with OdooConnector(odoo_config(emulator.base_url)) as conn:
        yield conn


@pytest.fixture
def bad_connector(emulator):
    with OdooConnector(odoo_config(emulator.base_url, password="wrong")) as conn:
        yield conn


class TestOdooConformance(ConnectorConformance):
    read_stream = "companies"
    write_stream = "customers"


class TestOdooOrdersConformance(ConnectorConformance):
    """Sale orders: one2many lines written with commands, confirmed after writing."""

    read_stream = "persons"
    write_stream = "sale_orders"

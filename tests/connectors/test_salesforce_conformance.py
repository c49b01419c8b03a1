"""Salesforce against the connector conformance suite, over a real loopback emulator."""

from __future__ import annotations

import pytest

from crm2erp.connectors.salesforce import SalesforceConfig, SalesforceConnector
from crm2erp.emulators.salesforce.app import CLIENT_ID, CLIENT_SECRET, make_app
from crm2erp.testing.conformance import ConnectorConformance


def sf_config(base_url: str, secret: str = CLIENT_SECRET, **extra) -> SalesforceConfig:
    return SalesforceConfig.model_validate({
        "type": "salesforce", "instance_url": base_url, "page_size": 200,
        "auth": {"type": "client_credentials", "client_id": CLIENT_ID, "client_secret": secret},
        "retry": {"max_attempts": 5, "backoff_base": 0.001, "backoff_max": 0.01},
        **extra})


@pytest.fixture
def emulator(serve):
    # 450 accounts = 3 REST pages of 200; 7 records share each SystemModstamp
    app = make_app(seed=7, accounts=450, contacts_per_account=1, line_items_per_opportunity=1)
    return serve(app)


@pytest.fixture
def connector(emulator):
    with SalesforceConnector(sf_config(emulator.base_url)) as conn:
        yield conn


@pytest.fixture
def bad_connector(emulator):
    with SalesforceConnector(sf_config(emulator.base_url, secret="wrong-secret")) as conn:
        yield conn


class TestSalesforceConformance(ConnectorConformance):
    read_stream = "accounts"
    write_stream = "accounts"


class TestSalesforceBulkConformance(ConnectorConformance):
    """The same checks with every read through Bulk API 2.0 query jobs."""

    read_stream = "contacts"
    write_stream = "contacts"

    @pytest.fixture
    def connector(self, emulator):
        config = sf_config(emulator.base_url, mode="bulk", bulk_max_records=150,
                           bulk_poll_interval=0)
        with SalesforceConnector(config) as conn:
            yield conn

    def test_resume_inside_equal_cursor_values(self, connector, emulator):
        """Bulk results are unordered: only the final batch carries a cursor."""
        batches = list(connector.read(self.read_stream, batch_size=7))
        assert all(b.cursor is None for b in batches[:-1])
        last = batches[-1].cursor
        rows = [r for b in batches for r in b.rows]
        assert last.key == max((r["SystemModstamp"], r["Id"]) for r in rows)[1]
        assert list(connector.read(self.read_stream, last)) == []

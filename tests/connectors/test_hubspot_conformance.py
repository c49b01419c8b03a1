"""HubSpot against the connector conformance suite, over a real loopback emulator."""

from __future__ import annotations

import pytest

from crm2erp.connectors.hubspot import HubSpotConfig, HubSpotConnector
from crm2erp.emulators.hubspot.app import TOKEN, make_app
from crm2erp.testing.conformance import ConnectorConformance


def hs_config(base_url: str, token: str = TOKEN, **extra) -> HubSpotConfig:
    return HubSpotConfig.model_validate({
        "type": "hubspot", "base_url": base_url, "page_size": 100,
        "search_requests_per_second": None,
        "auth": {"type": "bearer", "token": token},
        "retry": {"max_attempts": 5, "backoff_base": 0.001, "backoff_max": 0.01},
        **extra})


@pytest.fixture
def emulator(serve):
    # 450 companies = 5 search pages of 100; 7 records share each modification stamp
    app = make_app(seed=7, companies=450, contacts_per_company=1, line_items_per_deal=1)
    return serve(app)


@pytest.fixture
def connector(emulator):
    with HubSpotConnector(hs_config(emulator.base_url)) as conn:
        yield conn


@pytest.fixture
def bad_connector(emulator):
    with HubSpotConnector(hs_config(emulator.base_url, token="pat-wrong")) as conn:
        yield conn


class TestHubSpotConformance(ConnectorConformance):
    read_stream = "companies"
    write_stream = "companies"


class TestHubSpotCappedSearchConformance(ConnectorConformance):
    """The same checks with a search cap of 120 results, so every read restarts searches."""

    read_stream = "contacts"
    write_stream = "contacts"

    @pytest.fixture
    def emulator(self, serve):
        app = make_app(seed=11, companies=300, contacts_per_company=1, search_cap=120)
        return serve(app)

    @pytest.fixture
    def connector(self, emulator):
        with HubSpotConnector(hs_config(emulator.base_url, page_size=50,
                                        search_cap=120)) as conn:
            yield conn

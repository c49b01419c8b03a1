"""SAP write semantics read back through the emulator's OData API: per-record retries
under injected faults, multi-valued addresses/phones/e-mails, deletes and archives."""

from __future__ import annotations

import logging

import pytest
import requests

from crm2erp.connectors.base import WriteAction
from crm2erp.connectors.sap import SapConfig, SapConnector
from crm2erp.connectors.sap.emulator import PASSWORD, USERNAME, make_app
from crm2erp.testing.server import serve_wsgi

from .test_sap_conformance import sap_config

BP = "/sap/opu/odata/sap/API_BUSINESS_PARTNER"


@pytest.fixture
def raw():
    session = requests.Session()
    session.auth = (USERNAME, PASSWORD)
    session.headers["Accept"] = "application/json"
    yield session
    session.close()


def read_partners(raw, base_url: str, ext_ids: list[str]) -> dict[str, list[dict]]:
    """Business partners by external id, as SAP's OData API answers them."""
    found: dict[str, list[dict]] = {e: [] for e in ext_ids}
    url = f"{base_url}{BP}/A_BusinessPartner"
    params = {"$format": "json", "$expand": "to_BusinessPartnerAddress/to_PhoneNumber,"
              "to_BusinessPartnerAddress/to_EmailAddress"}
    while url:
        page = raw.get(url, params=params).json()["d"]
        for bp in page["results"]:
            if bp["BusinessPartnerIDByExtSystem"] in found:
                found[bp["BusinessPartnerIDByExtSystem"]].append(bp)
        url, params = page.get("__next"), None
    return found


def test_a_run_at_20_percent_faults_writes_every_record_exactly_once(raw):
    app = make_app(seed=11, business_partners=5, sales_orders=0, billing_documents=0,
                   requirements=0, fault_rate=0.2)
    waits: list[float] = []
    with serve_wsgi(app):
        rows = app.sample_rows("business_partners", 80)
        config = sap_config(app.base_url, write_batch_size=5,
                            retry={"max_attempts": 6, "backoff_base": 0.5})
        with SapConnector(config, sleep=waits.append) as conn:
            results = conn.upsert("business_partners", rows)
            lost = sum(n for status, n in conn.sap.writer.stats.by_status.items()
                       if status >= 429)
            # more lost $batch answers than the old 3-per-upsert budget allowed, each
            # paced by the connection's backoff through the injected sleep
            assert lost >= 4
            assert len(conn.client.stats.waits) >= lost and waits
        assert [r.action for r in results] == [WriteAction.CREATED] * 80
        app.fault_rate = 0.0
        found = read_partners(raw, app.base_url,
                              [r["BusinessPartnerIDByExtSystem"] for r in rows])
    for row, result in zip(rows, results, strict=True):
        [bp] = found[row["BusinessPartnerIDByExtSystem"]]
        assert bp["BusinessPartner"] == result.target_id
        assert bp["OrganizationBPName1"] == row["OrganizationBPName1"]


def test_write_attempts_is_deprecated_and_ignored(caplog):
    with caplog.at_level(logging.WARNING, logger="crm2erp.connectors.sap"):
        config = SapConfig.model_validate({"base_url": "https://s4.example.com",
                                           "write_attempts": 3})
    assert "write_attempts" not in config.model_dump()
    assert "write_attempts is deprecated" in caplog.text and "retry.max_attempts" in caplog.text

"""The HubSpot inbound mapping pack, applied to emulator records, gives valid canonical models."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from crm2erp.connectors.hubspot import HubSpotConfig, HubSpotConnector
from crm2erp.emulators.hubspot.app import TOKEN, make_app
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.mapping import DictResolver, compile_mapping, load_mapping
from crm2erp.testing.canonical import canonical_records, read_streams

PACK = Path(__file__).resolve().parents[2] / "mappings" / "hubspot"
STREAMS = {"hubspot_company.in.map.yaml": "companies", "hubspot_contact.in.map.yaml": "contacts",
           "hubspot_deal.in.map.yaml": "deals", "hubspot_product.in.map.yaml": "products"}


@pytest.fixture(scope="module")
def records():
    app = make_app(seed=9, companies=12)
    with serve_wsgi(app):
        conn = HubSpotConnector(HubSpotConfig.model_validate({
            "base_url": app.base_url, "search_requests_per_second": None,
            "auth": {"type": "bearer", "token": TOKEN}}))
        yield read_streams(conn, STREAMS.values())


def test_pack_covers_the_four_streams():
    assert sorted(p.name for p in PACK.glob("*.map.yaml")) == sorted(STREAMS)


@pytest.mark.parametrize("filename", sorted(STREAMS))
def test_mapping_produces_valid_canonical_records(filename, records):
    compiled = compile_mapping(load_mapping(PACK / filename), system="hubspot")
    spec = compiled.spec
    resolver = DictResolver({("Account", "hubspot", r["id"]): f"acc-{r['id']}"
                             for r in records["companies"]})
    rows = records[STREAMS[filename]]
    out = canonical_records(compiled, rows, resolver)
    assert len(out) == len(rows) > 0
    first, row = out[0], rows[0]
    assert first.id == row["id"] and first.updated_at is not None
    if spec.entity == "Account":
        assert first.name == row["name"] and first.billing_address.country is not None
        assert first.phone.startswith("+")
    if spec.entity in ("Contact", "Opportunity"):
        assert first.account_id == f"acc-{row['associations']['companies'][0]}"
    if spec.entity == "Opportunity":
        assert first.stage.value in ("open", "won", "lost")
        assert first.probability == Decimal(50) and first.amount == Decimal(row["amount"])
    if spec.entity == "Product":
        assert first.sku == row["hs_sku"] and first.unit_price == Decimal(row["price"])

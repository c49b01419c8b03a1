"""The Dynamics inbound mapping pack, applied to emulator records, gives valid canonical models."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from crm2erp.connectors.dynamics import DynamicsConfig, DynamicsConnector
from crm2erp.emulators.dynamics.app import CLIENT_ID, CLIENT_SECRET, TENANT_ID, make_app
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.mapping import DictResolver, compile_mapping, load_mapping
from crm2erp.testing.canonical import canonical_records, read_streams

PACK = Path(__file__).resolve().parents[2] / "mappings" / "dynamics"
STREAMS = {"dynamics_account.in.map.yaml": "accounts",
           "dynamics_contact.in.map.yaml": "contacts",
           "dynamics_opportunity.in.map.yaml": "opportunities",
           "dynamics_product.in.map.yaml": "products"}


@pytest.fixture(scope="module")
def records():
    app = make_app(seed=9, accounts=12)
    with serve_wsgi(app):
        conn = DynamicsConnector(DynamicsConfig.model_validate({
            "environment_url": app.base_url, "authority_url": app.base_url,
            "tenant_id": TENANT_ID, "auth": {"type": "client_credentials",
                                             "client_id": CLIENT_ID,
                                             "client_secret": CLIENT_SECRET}}))
        yield read_streams(conn, STREAMS.values())


def test_pack_covers_the_four_streams():
    assert sorted(p.name for p in PACK.glob("*.map.yaml")) == sorted(STREAMS)


@pytest.mark.parametrize("filename", sorted(STREAMS))
def test_mapping_produces_valid_canonical_records(filename, records):
    compiled = compile_mapping(load_mapping(PACK / filename), system="dynamics")
    spec = compiled.spec
    resolver = DictResolver({("Account", "dynamics", r["accountid"]): f"acc-{r['accountid']}"
                             for r in records["accounts"]})
    rows = records[STREAMS[filename]]
    out = canonical_records(compiled, rows, resolver)
    assert len(out) == len(rows) > 0
    first, row = out[0], rows[0]
    assert first.updated_at is not None
    if spec.entity == "Account":
        assert (first.id, first.customer_number) == (row["accountid"], row["accountnumber"])
        assert first.status.value == "active" and first.phone.startswith("+")
        assert first.billing_address.country is not None
    if spec.entity == "Contact":
        assert first.account_id == f"acc-{row['_parentcustomerid_value']}"
    if spec.entity == "Opportunity":
        assert first.account_id == f"acc-{row['_parentaccountid_value']}"
        assert first.stage.value == "open" and first.close_date is not None
        assert first.amount == Decimal(str(row["estimatedvalue"]))
    if spec.entity == "Product":
        assert first.sku == row["productnumber"] and first.active is True

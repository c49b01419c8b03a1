"""The hubspot-tryton pack's DAGs run to success with ``airflow dags test``
against a real trytond (the other packs: tests/airflow/test_pack_dags.py).

The test sits here because the trytond fixtures live in this folder's
conftest; the Airflow harness (temporary AIRFLOW_HOME, CLI runner) is the one
of tests/airflow/conftest.py, loaded as the same module pytest uses, so the
session's home is one, holding a copy of the run's one migrated metadata database.
"""

from __future__ import annotations

import importlib.util
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from crm2erp.emulators.hubspot import portal as hubspot_portal
from crm2erp.emulators.hubspot.app import make_app
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore

AIRFLOW_CONFTEST = Path(__file__).resolve().parents[1] / "airflow" / "conftest.py"
FLOWS = ["hs_tryton_accounts", "hs_tryton_orders"]   # parents first


def _airflow_harness():
    """tests/airflow/conftest.py as pytest imports it (``tests.airflow.conftest``)."""
    name = "tests.airflow.conftest"
    if name not in sys.modules:   # only tests/tryton was asked for
        spec = importlib.util.spec_from_file_location(name, AIRFLOW_CONFTEST)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def airflow():
    """The harness on a copy of the machine's migrated metadata database (one worker
    migrates it for every test folder; this one does not migrate again)."""
    harness = _airflow_harness()
    harness.migrate_once()
    return harness.AirflowCli()


@pytest.fixture
def hubspot(monkeypatch):
    """A small HubSpot portal whose company and deal ids no other Tryton test uses
    (party codes and sale references derive from them, and the server is shared)."""
    monkeypatch.setitem(hubspot_portal._ID_BASE, "companies", 10_000_700_000)
    monkeypatch.setitem(hubspot_portal._ID_BASE, "deals", 30_000_700_000)
    app = make_app(seed=33, companies=6, contacts_per_company=0, deals_per_company=2,
                   line_items_per_deal=2, product_skus=["P-WIDGET", "P-GADGET"])
    return app


def test_hubspot_tryton_flows_run_with_airflow_dags_test(airflow, hubspot, tryton_server,
                                                         tryton, tmp_path):
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    with serve_wsgi(hubspot) as url:
        env = {"CRM2ERP_PROJECT": str(pack_dir("packs/hubspot-tryton")),
               "CRM2ERP_STATE_URL": state_url, "HUBSPOT_URL": url,
               "TRYTON_URL": tryton_server.url, "TRYTON_DATABASE": tryton_server.database,
               "TRYTON_USER": tryton_server.username,
               "TRYTON_PASSWORD": tryton_server.password}
        for flow in FLOWS:
            airflow.dags_test(flow, env)

    companies = hubspot.portal.records("companies")
    won = [d for d in hubspot.portal.records("deals")
           if d["properties"]["dealstage"] == "closedwon"]
    with StateStore.open(state_url) as store:
        runs = {}
        for run in store.list_runs(limit=10):   # newest first
            runs.setdefault(run.flow, run)
        letters = store.dead_letters(status=("open", "parked"), limit=100)
        codes = store.canonical_ids("Account", "hubspot", [c["id"] for c in companies])
        refs = store.canonical_ids("SalesOrder", "hubspot", [d["id"] for d in won])

    assert [(d.flow, d.source_key, d.error) for d in letters] == []
    assert set(runs) == set(FLOWS) and {r.status for r in runs.values()} == {"succeeded"}
    assert runs["hs_tryton_accounts"].counts["created"] == 6
    parties = tryton.client.model("party.party", "search_read",
                                  [("code", "in", list(codes.values()))], 0, None, None,
                                  ["code"])
    assert len(parties) == 6
    # write-back: each company's erp_id is the id of its Tryton party
    party_ids = {p["code"]: str(p["id"]) for p in parties}
    assert {c["id"]: c["properties"]["erp_id"] for c in companies} == {
        c["id"]: party_ids[codes[c["id"]]] for c in companies}

    assert won and runs["hs_tryton_orders"].counts["created"] == len(won)
    sales = tryton.client.model("sale.sale", "search_read",
                                [("reference", "in", list(refs.values()))], 0, None, None,
                                ["reference", "total_amount", "lines"])
    assert len(sales) == len(won) and all(len(s["lines"]) == 2 for s in sales)
    amounts = {s["reference"]: Decimal(str(s["total_amount"])) for s in sales}
    assert amounts == {refs[d["id"]]: Decimal(str(d["properties"]["amount"])) for d in won}

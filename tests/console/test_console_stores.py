"""The console over each kind of state store (SQLite, PostgreSQL, MariaDB): the
overview, the grouped dead letters, and a retry whose record reaches the ERP."""

import html
import re

import sqlalchemy as sa
from starlette.testclient import TestClient  # noqa: E402

from crm2erp.console.app import create_app  # noqa: E402
from crm2erp.demo import write_project  # noqa: E402
from crm2erp.demo.sample import sample_crm_rows  # noqa: E402
from crm2erp.demo.systems import create_systems  # noqa: E402
from crm2erp.engine import Engine  # noqa: E402
from crm2erp.mapping import load_project  # noqa: E402
from crm2erp.store import StateStore  # noqa: E402


def _text(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", response.text)).split())


def test_the_console_on_every_state_store(any_db_url, tmp_path, monkeypatch):
    demo = tmp_path / "demo"
    demo.mkdir()
    create_systems(f"sqlite:///{demo / 'crm.db'}", f"sqlite:///{demo / 'erp.db'}",
                   sample_crm_rows(accounts=40))
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(demo))
    project_dir = write_project(demo, demo / "unused.db", fresh=True)
    with StateStore.open(any_db_url) as store, \
            Engine(load_project(project_dir), store) as engine:
        for flow in ("demo_accounts", "demo_contacts"):
            engine.run(flow)
    with TestClient(create_app(any_db_url, project_dir)) as client:
        business = client.get("/business")        # the hub's memory, on this store
        assert business.status_code == 200 and "No sales orders in the hub" in _text(business)
        overview = _text(client.get("/"))
        assert "demo_accounts: 4 dead letter(s) to fix" in overview
        assert "demo_orders: never run" in overview
        page = client.get("/dead-letters", params={"flow": "demo_accounts"})
        assert "4 dead letter(s) in 4 group(s)" in _text(page)
        form = next(f for f in re.findall(r'<form method="post">(.*?)</form>', page.text,
                                          re.S) if "Reseller" in f)
        ids = re.findall(r'name="ids" value="(\d+)"', form)
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        map_file = project_dir / "maps" / "crm_account.in.map.yaml"
        map_file.write_text(map_file.read_text().replace("Kunde: customer",
                                                         "Kunde: customer, Reseller: partner"))
        done = client.post("/dead-letters/retry", data={"csrf": token, "ids": ids})
        assert f"#{ids[0]} A-0013 (demo_accounts): resolved" in _text(done)
    with StateStore.open(any_db_url) as store:
        canonical = store.canonical_ids("Account", "crm", ["A-0013"])["A-0013"]
    erp = sa.create_engine(f"sqlite:///{demo / 'erp.db'}")
    with erp.connect() as conn:
        kind = conn.execute(sa.text("SELECT kind FROM customers WHERE crm_ref = :r"),
                            {"r": canonical}).scalar_one()
    erp.dispose()
    assert kind == "partner"

"""``crm2erp serve --export DIR``: the console's run pages as static files (the
report for e-mail and CI): an index, a page per flow with the labelled chart, and
immutable run pages, from the console's own templates."""

import html
import re

from crm2erp.cli import main
from crm2erp.demo import DEMO_FLOWS
from crm2erp.store import StateStore
from crm2erp.store.quality import QualityResult
from tests.console.test_console import HOSTILE_NAME


def shown(path) -> str:
    text = path.read_text(encoding="utf-8")
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def test_export_writes_an_index_flow_pages_and_immutable_run_pages(tmp_path, demo_copies):
    demo = demo_copies(tmp_path / "crm2erp-demo")
    with StateStore.open(demo.state_url) as store:
        store.save_quality_results(1, "demo_accounts", [QualityResult(
            rule="city_known", expectation="expect_column_values_to_be_in_set",
            column="city", severity="warning", evaluated=116, failed=2, success=False,
            sample=[HOSTILE_NAME, "Köln"])])
    out = tmp_path / "site"
    assert main(["-p", str(demo.project), "serve", "--export", str(out)]) == 0
    index = (out / "index.html").read_text(encoding="utf-8")
    for flow in DEMO_FLOWS:
        assert f'href="flow-{flow}.html"' in index and (out / f"flow-{flow}.html").exists()
    assert 'href="run-1.html"' in index
    chart = re.search(r"<svg.*?</svg>", (out / "flow-demo_accounts.html").read_text(), re.S)
    assert "Records per run of demo_accounts: loaded, failed and parked" in chart.group(0)
    assert ">records<" in chart.group(0) and ">runs, oldest to newest<" in chart.group(0)
    assert "loaded failed parked" in shown(out / "flow-demo_accounts.html")      # legend
    run_page = out / "run-1.html"
    assert "Failed: 5" in shown(run_page) and "Parked: 0" in shown(run_page)
    assert f"{HOSTILE_NAME}, Köln" in shown(run_page)          # UTF-8 and markup as text
    for page in out.glob("*.html"):     # self-contained: no script, nothing from a server
        text = page.read_text(encoding="utf-8")
        assert "<script" not in text and 'href="/' not in text and "<img" not in text, page
    before = run_page.read_bytes()

    # a later retry changes the dead letters, not run #1's page
    map_file = demo.project / "maps" / "crm_account.in.map.yaml"
    map_file.write_text(map_file.read_text().replace("Kunde: customer",
                                                     "Kunde: customer, Reseller: partner"))
    assert main(["-p", str(demo.project), "dlq", "retry", "--flow", "demo_accounts"]) in (0, 1)
    with StateStore.open(demo.state_url) as store:
        store.save_quality_results(1, "demo_accounts", [])
        latest = store.list_runs("demo_accounts", limit=1)[0].id
    assert main(["-p", str(demo.project), "serve", "--export", str(out)]) == 0
    assert run_page.read_bytes() == before
    assert (out / f"run-{latest}.html").exists()
    assert f'href="run-{latest}.html"' in (out / "index.html").read_text()

"""``crm2erp report``: the console's pages as static files (index, a page per flow with
the labelled chart, immutable run pages), written after every demo run and on demand,
opened in headless Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import pytest
from PIL import Image, ImageStat

from crm2erp.cli import main
from crm2erp.store import StateStore
from crm2erp.store.quality import QualityResult
from tests.console.test_export import shown

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
HOSTILE = "<script>alert(1)</script>"


def chromium(page, tmp_path, *args) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium")
    assert binary, "chromium is not installed: run scripts/system-deps.sh"
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chrome'}",
                           *args, page.as_uri()], capture_output=True, text=True, timeout=120)


@pytest.fixture
def demo(tmp_path, monkeypatch, demo_copies):
    monkeypatch.delenv("CRM2ERP_REPORTS_DIR", raising=False)
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))
    return demo_copies(tmp_path / "demo", accounts=40)


def test_demo_run_report_shows_the_run_in_a_browser(demo, tmp_path):
    accounts = demo.results[0]
    folder = demo.directory / "reports"
    page = folder / f"run-{accounts.run_id}.html"
    assert page.is_file() and (folder / "index.html").is_file()   # written by the run hook
    with StateStore.open(demo.state_url) as store:
        run = store.get_run(accounts.run_id)
    assert run.counts["read"] == 40 and run.counts["failed"] > 0
    index = (folder / "index.html").read_text(encoding="utf-8")
    assert f'href="run-{run.id}.html"' in index and 'href="flow-demo_accounts.html"' in index

    dumped = chromium(page, tmp_path, "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dumped.stdout)).split())
    assert f"Run #{run.id} of demo_accounts" in dom
    assert f"Failed: {run.counts['failed']}" in dom and f"Parked: {run.counts['parked']}" in dom
    assert f"read {run.counts['read']}" in dom
    assert "<script" not in dumped.stdout

    chart = re.search(r"<svg.*?</svg>", (folder / "flow-demo_accounts.html").read_text(), re.S)
    assert "Records per run of demo_accounts: loaded, failed and parked" in chart.group(0)
    assert ">records<" in chart.group(0) and ">runs, oldest to newest<" in chart.group(0)
    assert "loaded failed parked" in shown(folder / "flow-demo_accounts.html")   # legend

    shot = tmp_path / "report.png"
    taken = chromium(folder / "flow-demo_accounts.html", tmp_path, "--window-size=1200,900",
                     f"--screenshot={shot}")
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert ImageStat.Stat(image).stddev[0] > 10               # not a blank page


def test_report_of_an_old_run_is_what_it_was_when_it_finished(demo, tmp_path):
    accounts = demo.results[0].run_id
    hook_page = demo.directory / "reports" / f"run-{accounts}.html"
    before = hook_page.read_bytes()
    with StateStore.open(demo.state_url) as store:
        failed = store.get_run(accounts).counts["failed"]
    assert failed and f"Failed: {failed}" in shown(hook_page)
    # the steward fixes the mapping and retries: today some of the letters are resolved
    map_file = demo.project / "maps" / "crm_account.in.map.yaml"
    map_file.write_text(map_file.read_text().replace("Kunde: customer",
                                                     "Kunde: customer, Reseller: partner"))
    assert main(["-p", str(demo.project), "dlq", "retry", "--flow", "demo_accounts"]) in (0, 1)
    with StateStore.open(demo.state_url) as store:
        resolved = [x for x in store.run_dead_letters(accounts) if x.status == "resolved"]
        latest = store.list_runs("demo_accounts", limit=1)[0].id
    assert resolved and latest > accounts

    assert main(["-p", str(demo.project), "report", str(accounts)]) == 0
    assert hook_page.read_bytes() == before                  # not rewritten
    fresh = tmp_path / "fresh"
    assert main(["-p", str(demo.project), "report", str(accounts), "--out", str(fresh)]) == 0
    assert (fresh / f"run-{accounts}.html").read_bytes() == before   # nor drawn from today
    assert f'href="run-{latest}.html"' in (fresh / "index.html").read_text()
    assert (demo.directory / "reports" / f"run-{latest}.html").is_file()


def test_report_shows_utf8_as_text_and_escapes_markup(demo, tmp_path):
    with StateStore.open(demo.state_url) as store:
        store.save_quality_results(1, "demo_accounts", [QualityResult(
            rule="city_known", expectation="expect_column_values_to_be_in_set",
            column="city", severity="warning", evaluated=40, failed=2, success=False,
            sample=[HOSTILE, "Köln"])])
    out = tmp_path / "out"
    assert main(["-p", str(demo.project), "report", "--out", str(out)]) == 0
    raw = (out / "run-1.html").read_text(encoding="utf-8")
    assert HOSTILE not in raw and "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
    assert "Köln" in raw and "K\\u00f6ln" not in raw and "K&#" not in raw
    assert f"{HOSTILE}, Köln" in shown(out / "run-1.html")
    data = json.loads((out / "run-1.json").read_text(encoding="utf-8"))
    assert data["quality"]["results"][0]["sample"] == [HOSTILE, "Köln"]
    for page in out.glob("*.html"):          # self-contained: no script, nothing from a server
        text = page.read_text(encoding="utf-8")
        assert "<script" not in text and 'href="/' not in text, page


def test_report_masks_the_flows_pii_unless_unmasked(demo, tmp_path, capsys):
    flow_file = demo.project / "accounts.flow.yaml"
    flow_file.write_text(flow_file.read_text().replace("quality:\n", "quality:\n  mask: [email]\n"))
    capsys.readouterr()
    assert main(["-p", str(demo.project), "report", "1", "--json"]) == 0
    masked = json.loads(capsys.readouterr().out)
    emails = [x["payload"]["email"] for x in masked["dead_letters"] if x["payload"].get("email")]
    assert emails and all("***@" in e for e in emails)
    assert masked["quality"]["masked_fields"] == ["email"]
    assert main(["-p", str(demo.project), "report", "1", "--json", "--unmask"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "info@@nordwind-logistics.example" in [
        x["payload"].get("email") for x in plain["dead_letters"]]
    assert plain["run"]["counts"] == masked["run"]["counts"]


def test_report_refuses_an_unknown_run_and_json_without_a_run(demo, capsys):
    assert main(["-p", str(demo.project), "report", "999"]) == 2
    assert "999" in capsys.readouterr().err
    assert main(["-p", str(demo.project), "report", "--json"]) == 2

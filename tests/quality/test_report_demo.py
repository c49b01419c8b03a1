"""The steward report of a demo run, opened in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from PIL import Image, ImageStat

from crm2erp.demo import run_demo
from crm2erp.engine import Engine
from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir
from crm2erp.quality.reconcile import reconcile
from crm2erp.quality.report import collect, render_html, write_report
from crm2erp.store import StateStore

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def chromium(page, tmp_path, *args) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium")
    assert binary, "chromium is not installed: run scripts/system-deps.sh"
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chrome'}",
                           *args, page.as_uri()], capture_output=True, text=True, timeout=120)


@pytest.fixture
def demo(tmp_path, monkeypatch):
    monkeypatch.delenv("CRM2ERP_REPORTS_DIR", raising=False)
    monkeypatch.setenv("CRM2ERP_DEMO_DIR", str(tmp_path))
    outcome = run_demo(tmp_path / "demo", accounts=40)
    return tmp_path / "demo", outcome


def _card(dom: str, name: str) -> int:
    match = re.search(rf'id="count-{name}"><div class="n">(\d+)</div>', dom)
    assert match, f"no {name} card in the report"
    return int(match.group(1))


def test_demo_run_report_shows_the_run_log_in_a_browser(demo, tmp_path):
    folder, outcome = demo
    accounts = outcome.results[0]
    page = folder / "reports" / f"run-{accounts.run_id}.html"
    assert page.is_file()                      # written by the engine hook after the run
    store = StateStore.open(outcome.state_url)
    run = store.get_run(accounts.run_id)
    letters = store.run_dead_letters(accounts.run_id)
    store.close()

    dumped = chromium(page, tmp_path, "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    assert f"Run {run.id} · demo_accounts" in dom
    for name in ("read", "created", "failed", "parked"):
        assert _card(dom, name) == run.counts[name]
    assert run.counts["read"] == 40 and run.counts["failed"] > 0
    assert 'id="run-status"' in dom and run.status in dom
    for section in ("summary", "quality", "history", "failing-rows", "dedupe",
                    "reconciliation"):
        assert f'<section id="{section}">' in dom
    assert "No quality rules are configured" in dom
    assert all(letter.source_key in dom for letter in letters)
    assert "dedupe is not configured" in dom              # the demo flows have no dedupe:
    assert "<script" not in dom and "http://" not in dom.replace("http://www.w3.org", "")

    shot = tmp_path / "report.png"
    taken = chromium(page, tmp_path, "--window-size=1200,1400", f"--screenshot={shot}")
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 1400)
    assert ImageStat.Stat(image).stddev[0] > 10               # not a blank page
    dark = sum(image.histogram()[:128])
    assert dark > 0.005 * image.size[0] * image.size[1]        # text and charts drawn


def test_report_after_reconcile_and_cli_json(demo, tmp_path):
    folder, outcome = demo
    store = StateStore.open(outcome.state_url)
    try:
        with Engine(load_project(pack_dir("demo")), store) as engine:
            reconciled = reconcile(engine.runner("demo_accounts"))
        run_id = outcome.results[0].run_id
        page = write_report(store, run_id, tmp_path / "out")
        data = collect(store, run_id)
    finally:
        store.close()
    html = page.read_text()
    assert f"Latest reconciliation #{reconciled.id}" in html
    assert 'id="reconcile-status">clean<' in html
    assert render_html(data).count("<section") == 6

    done = subprocess.run(
        [sys.executable, "-m", "crm2erp", "--project", str(pack_dir("demo")), "--state",
         outcome.state_url, "report", str(run_id), "--json"],
        capture_output=True, text=True, env={**os.environ, "CRM2ERP_DEMO_DIR": str(folder),
                                             "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    cli = json.loads(done.stdout)
    assert cli["run"]["counts"] == data["run"]["counts"]
    assert cli["reconciliation"]["status"] == "clean"
    assert cli["dedupe"]["available"] in (True, False)


def test_html_is_escaped(demo, tmp_path):
    _, outcome = demo
    store = StateStore.open(outcome.state_url)
    try:
        data = collect(store, outcome.results[0].run_id)
    finally:
        store.close()
    data["run"]["message"] = "<script>alert(1)</script>"
    html = render_html(data)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html

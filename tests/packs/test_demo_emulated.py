"""``crm2erp demo --systems salesforce-sap`` through the real command line, twice."""

from __future__ import annotations

import os

from tests.clirunner import run


def crm2erp(*args, cwd):
    return run(args, cwd=cwd, env={**os.environ, "COLUMNS": "200"})


def test_emulated_demo_syncs_then_finds_nothing_to_change(tmp_path):
    for _ in range(2):   # a second invocation starts again from fresh emulators
        done = crm2erp("demo", "--systems", "salesforce-sap", "--dir", "demo",
                       "--accounts", "20", cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout
        assert "run 1 of 2" in out and "run 2 of 2" in out
        for flow in ("sf_sap_accounts", "sf_sap_orders", "sf_sap_invoices"):
            assert out.count(flow) >= 2
        first, second = out.split("run 2 of 2")
        assert "billing run billed" in first
        assert "held back: sf_sap_accounts" in out and "ask reception" in out
        assert "no changes" in second
        assert (tmp_path / "demo" / "state-salesforce-sap.db").exists()


def test_unknown_pack_is_a_config_error(tmp_path):
    done = crm2erp("demo", "--systems", "salesforce-nothing", "--dir", "demo", cwd=tmp_path)
    assert done.returncode == 2
    assert "salesforce-sap" in done.stdout + done.stderr

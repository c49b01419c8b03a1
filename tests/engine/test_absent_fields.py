"""A mapping's `from:` that names no field of the source records (a typo such as
`emial`, or a field the source stopped sending) leaves the target's values as
they are, and the run says so: a warning in the run log, in `status` and in the
steward's report. Issue 10, finding 6."""

from __future__ import annotations

import datetime as dt
import os
import subprocess

import sqlalchemy as sa
from markupsafe import escape

from crm2erp.console.export import export_site
from tests.clirunner import run

T0 = dt.datetime(2026, 3, 1, 12, 0, 0)

TYPO_IN = """
mapping: account_in
direction: inbound
entity: Account
fields:
  name: {from: name, transforms: [strip]}
  type:
    from: kind
    transforms: [{value_map: {map: {C: customer, P: prospect}, on_missing: error}}]
  email: {from: emial, transforms: [email]}
  billing_address.country: {from: country, transforms: [country]}
  updated_at: {from: updated_at, transforms: [{datetime: {tz: UTC}}]}
"""


def _status(systems) -> subprocess.CompletedProcess:
    """``crm2erp status``, run in this process as a child process sees it."""
    return run(["-p", str(systems.project), "--state", systems.state_url, "status"],
               cwd=os.getcwd(), env={**os.environ, "COLUMNS": "250"})


def test_typo_in_from_keeps_target_values_and_warns(account, systems, engine_for,
                                                    project_writer, tmp_path):
    systems.add_accounts(*(account(n) for n in range(1, 6)))
    first = engine_for(systems).run("accounts")
    assert first.counts["created"] == 5 and first.warnings == []
    emails = {r["crm_ref"]: r["email"] for r in systems.erp_rows()}
    assert all(emails.values())

    project_writer(systems.project, **{"account.in.map.yaml": TYPO_IN})
    with systems.crm.begin() as conn:     # every account edited: all are read again
        conn.execute(systems.accounts.update().values(
            name=sa.func.upper(systems.accounts.c.name),
            updated_at=T0 + dt.timedelta(hours=1)))
    engine = engine_for(systems)
    result = engine.run("accounts")

    rows = systems.erp_rows()
    assert result.counts["updated"] == 5
    assert {r["name"] for r in rows} == {f"COMPANY {n}" for n in range(1, 6)}
    assert {r["crm_ref"]: r["email"] for r in rows} == emails   # not one NULL
    warning = result.warnings[0]
    assert "'emial'" in warning and "account_in" in warning and len(result.warnings) == 1
    run = engine.store.get_run(result.run_id)
    assert run.warning_list == result.warnings

    status = _status(systems)
    assert status.returncode == 0, status.stderr
    assert "warning: flow accounts run" in status.stdout and "'emial'" in status.stdout
    export_site(engine.store, tmp_path / "report")
    page = (tmp_path / "report" / f"run-{result.run_id}.html").read_text(encoding="utf-8")
    assert f"<li>{escape(warning)}</li>" in page and "&#39;emial&#39;" in page


def test_a_field_some_records_have_is_no_warning(account, systems, engine_for):
    systems.add_accounts(account(1), account(2))
    with systems.crm.begin() as conn:
        conn.execute(systems.accounts.update().where(systems.accounts.c.id == "A002")
                     .values(email=None))
    result = engine_for(systems).run("accounts")
    assert result.warnings == []
    assert {r["email"] for r in systems.erp_rows()} == {"info@company1.example", None}

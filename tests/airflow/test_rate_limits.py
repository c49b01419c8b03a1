"""Rate limits and API budgets under Airflow, against the Salesforce emulator.

* a 429 with ``Retry-After`` puts the ``sync`` task up for retry with the
  server's wait as its retry delay (Airflow's retry policy), not the DAG's
  one-minute backoff. Nothing sleeps: the wait is longer than
  ``max_retry_after``, so the connector gives up at once and Airflow
  schedules the retry;
* a used-up daily API quota (``REQUEST_LIMIT_EXCEEDED``) ends the ``sync``
  task as skipped, with the watermark of the committed batches kept; the next
  run resumes there and the ERP ends with every account exactly once.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter

from crm2erp.demo.emulated import NEGATIVE_REVENUE, seed_salesforce, seed_sap
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.engine.resolver import canonical_id_for
from crm2erp.errors import RetriableError
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore

FLOW = "sf_sap_accounts"


def small_batch_pack(tmp_path, batch_size: int = 3):
    """A copy of the shipped mappings whose salesforce-sap accounts flow commits
    every ``batch_size`` records; the pack's folder."""
    mappings = shutil.copytree(pack_dir("demo").parent, tmp_path / "mappings")
    flow = mappings / "packs" / "salesforce-sap" / "accounts.flow.yaml"
    text = flow.read_text()
    assert "batch_size: 200" in text
    flow.write_text(text.replace("batch_size: 200", f"batch_size: {batch_size}"))
    return flow.parent


def pack_env(project, tmp_path, **variables: str) -> dict[str, str]:
    return {"CRM2ERP_PROJECT": str(project),
            "CRM2ERP_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}", **variables}


def test_a_429_sets_the_task_retry_delay_from_retry_after(airflow, tmp_path):
    sf, sap = seed_salesforce(accounts=4, seed=5), seed_sap()
    sf.fail_next(429, times=5, retry_after=7200, on="/query")
    with serve_wsgi(sf) as sf_url, serve_wsgi(sap) as sap_url:
        env = pack_env(pack_dir("packs/salesforce-sap"), tmp_path,
                       SF_INSTANCE_URL=sf_url, SAP_BASE_URL=sap_url)
        done = airflow.run("tasks", "test", FLOW, "sync", env=env, check=False)
    output = done.stdout + done.stderr
    assert "server asked to wait 7200s" in output, output[-6000:]
    assert sf.faults_pending == 4            # one 429 answered, no second try in the task
    # Airflow's task runner asked its retry policy, which set the delay of the
    # next try to the server's wait (the DAG's own retry_delay is one minute)
    decision = next(line for line in output.splitlines() if "Retry policy decision" in line)
    assert "action=retry" in decision and "wait 7200s (Retry-After)" in decision, decision
    assert "new_state=up_for_retry" in output


def test_without_retry_after_the_dags_own_backoff_applies(airflow):
    from airflow.sdk import RetryAction

    from crm2erp.orchestration.retry import RetryAfterPolicy

    policy = RetryAfterPolicy()
    for error in (RetriableError("HTTP 503"), TimeoutError("read timed out"),
                  RetriableError("HTTP 429", retry_after=0)):
        assert policy.evaluate(error, try_number=1, max_tries=3).action is RetryAction.DEFAULT
    decision = policy.evaluate(RetriableError("HTTP 429", retry_after=90), 1, 3)
    assert decision.action is RetryAction.RETRY
    assert decision.retry_delay == dt.timedelta(seconds=90)


def test_a_used_up_api_budget_skips_the_task_and_the_next_run_resumes(airflow, tmp_path,
                                                                      monkeypatch):
    project = small_batch_pack(tmp_path)
    # 12 accounts: one has no phone number (a map dead letter), one a negative revenue
    # (quarantined by the pack's quality rule): 10 go through
    sf, sap = seed_salesforce(accounts=12, seed=5), seed_sap()
    accounts = list(sf.org.tables["Account"].values())
    negative = next(a["Id"] for a in accounts if a["AnnualRevenue"] == NEGATIVE_REVENUE)
    # SAP's BusinessPartnerIDByExtSystem: the canonical id without dashes, upper, 20 chars
    valid = {canonical_id_for("Account", "salesforce", a["Id"]).replace("-", "").upper()[:20]
             for a in accounts if a["Id"] != negative and a["Phone"] != "ask reception"}
    assert len(accounts) == 12 and len(valid) == 10
    partners_before = sap.count("business_partners")
    with serve_wsgi(sf) as sf_url, serve_wsgi(sap) as sap_url:
        env = pack_env(project, tmp_path, SF_INSTANCE_URL=sf_url, SAP_BASE_URL=sap_url)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        from crm2erp.orchestration import tasks  # imports Airflow: not at collection

        tasks.check_connections(project, FLOW)      # the requests a connection check costs
        checked = sf.api_used
        # the task's check, then three requests of the sync: the quota runs out after
        # the first batches were committed (read, write, write-back of one batch)
        sf.daily_limit = 2 * checked + 3
        output = airflow.dags_test(FLOW, env)
        assert "new_state=skipped" in output and "daily API request limit" in output, \
            output[-6000:]
        with StateStore.open(env["CRM2ERP_STATE_URL"]) as store:
            stopped = store.list_runs(FLOW, limit=1)[0]
            kept = store.get_watermark(FLOW, "accounts")
        assert stopped.status == "failed" and "API request limit" in stopped.message
        loaded = sap.count("business_partners") - partners_before
        assert kept is not None and 0 < loaded < 10     # some batches committed, not all

        sf.daily_limit = 100_000    # the next day
        airflow.dags_test(FLOW, env)
        with StateStore.open(env["CRM2ERP_STATE_URL"]) as store:
            resumed = store.list_runs(FLOW, limit=1)[0]
            final = store.get_watermark(FLOW, "accounts")
        assert (final.value, final.key) > (kept.value, kept.key)   # it moved on from there
    assert resumed.status in ("succeeded", "partial")
    # the flow's 5-minute lookback re-reads the committed batches: they are unchanged
    assert resumed.counts["created"] == 10 - loaded
    partners = sap.find("business_partners")[partners_before:]
    ids = Counter(p["BusinessPartnerIDByExtSystem"] for p in partners)
    assert set(ids) == valid and len(partners) == 10    # each valid account exactly once
    with StateStore.open(env["CRM2ERP_STATE_URL"]) as store:
        quarantined = [d for d in store.dead_letters(FLOW, limit=100) if d.stage == "quality"]
    assert [d.source_key for d in quarantined] == [negative]
    assert "annual revenue is not negative" in quarantined[0].error

"""``crm2erp dedupe train`` and ``explain`` in real processes on a real project (issue 13)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import sqlalchemy as sa

from crm2erp.demo.systems import crm_tables
from crm2erp.store import StateStore
from crm2erp.testing.company_accounts import generate
from tests.cli.test_dedupe_cli import crm2erp
from tests.quality.dedupe_project import (
    T0,
    account,
    add_crm_accounts,
    erp_customers,
    make_project,
)

COUNTRY = {"DE": "Germany", "AT": "Austria", "CH": "Switzerland"}


def generated_rows(n: int, seed: int) -> list[dict]:
    """Generated company accounts (with their noisy duplicates) as demo CRM rows."""
    records, _ = generate(n, seed)
    rows = []
    for i, r in enumerate(records, start=10):
        address = r["billing_address"]
        rows.append(account(i, r["name"], email=r["email"], phone=r["phone"],
                            city=address["city"], zip=address["postal_code"],
                            street=address["street"], country=COUNTRY[address["country"]],
                            at=T0 + dt.timedelta(seconds=i)))
    return rows


def _project(tmp_path, rows, *, batch_size: int = 100):
    project = make_project(tmp_path, rows)
    flow = project / "accounts.flow.yaml"
    text = flow.read_text().replace("config: match.yaml", "preset: account")
    flow.write_text(text.replace("batch_size: 100", f"batch_size: {batch_size}"))
    return ["-p", str(project), "--state", f"sqlite:///{tmp_path / 'state.db'}"]


def _stored_model(tmp_path):
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        return store.dedupe_model("accounts")
    finally:
        store.close()


MUELLER = account(1, "Müller Bau GmbH", phone="+49 30 1234567", zip="10115",
                  street="Chausseestraße 5")
MUELLER_AGAIN = account(2, "Mueller Bau G.m.b.H.", phone="030 123 45 67", zip="10115",
                        street="Chausseestr. 5")


def test_train_stores_a_plausible_model_and_small_batches_use_it(tmp_path):
    rows = [MUELLER, *generated_rows(300, seed=7)]
    state = _project(tmp_path, rows)

    trained = crm2erp(*state, "dedupe", "train", "accounts", cwd=tmp_path)

    assert trained.returncode == 0, trained.stdout + trained.stderr
    out = trained.stdout
    # the generator's phone numbers are valid in their country whatever the format
    # ('(044) 768-9036', '+49 (0)30 ...'): every row is mapped and trained on
    assert "could not be mapped" not in out
    unusable = 0
    assert "model #1 of flow accounts" in out and f"on {len(rows) - unusable} records" in out
    for column in ("comparison", "level", "weight (bits)", "name", "phone", "street"):
        assert column in out
    model = _stored_model(tmp_path)
    assert model.id == 1 and model.n_records == len(rows) - unusable and model.n_pairs > 0
    assert model.trained_at is not None and model.entity == "Account"
    for comparison in model.model["comparisons"]:
        m, u = np.array(comparison["m"]), np.array(comparison["u"])
        assert (m[:-1] >= u[:-1]).all(), comparison    # agreement is never evidence against
        assert m[-1] <= u[-1], comparison
    assert 0 < model.model["lambda"] < 0.5

    # the first sync, then the same company spelt the other way, alone in a batch of one
    first = crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)
    assert first.returncode in (0, 1), first.stdout + first.stderr
    assert "estimated from the first batch" not in first.stderr   # the stored model is used
    flow = tmp_path / "project" / "accounts.flow.yaml"
    flow.write_text(flow.read_text().replace("batch_size: 100", "batch_size: 1"))
    add_crm_accounts(tmp_path, MUELLER_AGAIN)
    second = crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)
    assert second.returncode in (0, 1), second.stdout + second.stderr
    assert "estimated from the first batch" not in second.stderr

    muellers = [c for c in erp_customers(tmp_path) if "ller Bau" in c["name"]]
    assert len(muellers) == 1, muellers
    assert muellers[0]["postal_code"] == "10115"
    assert muellers[0]["phone"].replace(" ", "").endswith("301234567")


def test_explain_shows_each_fields_level_and_weight_adding_up_to_the_score(tmp_path):
    rows = [MUELLER, MUELLER_AGAIN, *generated_rows(300, seed=7)]
    state = _project(tmp_path, rows)
    assert crm2erp(*state, "dedupe", "train", "accounts", cwd=tmp_path).returncode == 0

    same = crm2erp(*state, "dedupe", "explain", "accounts", "A001", "A002", cwd=tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    out = same.stdout
    assert "'Müller Bau GmbH'" in out and "'Mueller Bau G.m.b.H.'" in out
    assert "model #1 trained" in out and ": merge" in out
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[1:-1]]
             for line in out.splitlines() if line.count("│") >= 9}
    assert lines["phone"][3] == "exact" and float(lines["phone"][6]) > 5
    assert lines["city"][3] == "exact"
    prior = float(out.split("prior log2(lambda/(1-lambda)) ")[1].split()[0])
    total = float(out.split("match weight ")[1].split()[0])
    bits = sum(float(v[6]) + (float(v[7]) if v[7] else 0.0) for k, v in lines.items()
               if k != "comparison")
    assert abs(prior + bits - total) < 0.05

    other = rows[2]["id"]
    apart = crm2erp(*state, "dedupe", "explain", "accounts", "A001", other, cwd=tmp_path)
    assert apart.returncode == 0 and ": distinct" in apart.stdout

    missing = crm2erp(*state, "dedupe", "explain", "accounts", "A001", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr


UNFITTED = """\
entity: account
blocking:
  - [{field: name, transform: [company, first:4]}]
comparisons:
  - {field: name, method: jaro_winkler, transform: company, thresholds: [0.88]}
  - {field: billing_address.city, name: city, method: exact, transform: name}
"""


def test_an_implausible_training_fails_and_the_previous_model_stays(tmp_path):
    rows = generated_rows(300, seed=3)
    project = make_project(tmp_path, rows)
    (project / "match.yaml").write_text(UNFITTED)
    state = ["-p", str(project), "--state", f"sqlite:///{tmp_path / 'state.db'}"]
    good = crm2erp(*state, "dedupe", "train", "accounts", cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    before = _stored_model(tmp_path)

    # the CRM now holds 30 records of one name in one city: EM calls every pair a match
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    table = crm_tables(sa.MetaData())["accounts"]
    with engine.begin() as conn:
        conn.execute(table.delete())
        conn.execute(table.insert(), [account(i, "Acme GmbH", city="Berlin")
                                      for i in range(1, 31)])
    engine.dispose()
    bad = crm2erp(*state, "dedupe", "train", "accounts", cwd=tmp_path)

    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "training refused" in bad.stderr and "implausible" in bad.stderr
    assert "previous model #1" in bad.stderr and "Traceback" not in bad.stderr
    after = _stored_model(tmp_path)
    assert after.id == before.id and after.model == before.model


def test_train_on_a_flow_without_dedupe_is_a_configuration_error(tmp_path):
    state = _project(tmp_path, [MUELLER])
    project = tmp_path / "project" / "accounts.flow.yaml"
    project.write_text(project.read_text().split("dedupe:")[0])
    run = crm2erp(*state, "dedupe", "train", "accounts", cwd=tmp_path)
    assert run.returncode == 2 and "no dedupe section" in run.stderr


def test_training_on_one_dominant_city_keeps_m_above_u_and_finds_the_duplicates(tmp_path):
    """Where 80% of the companies share one city, unconstrained EM learns "same city =
    same company"; the trained model must not, and must score the true pairs as merges."""
    records, truth = generate(600, 11, dominant_city=0.8)
    rows = [account(i, r["name"], email=r["email"], phone=r["phone"],
                    city=r["billing_address"]["city"], zip=r["billing_address"]["postal_code"],
                    street=r["billing_address"]["street"],
                    country=COUNTRY[r["billing_address"]["country"]])
            for i, r in enumerate(records, start=1)]
    state = _project(tmp_path, rows)
    trained = crm2erp(*state, "dedupe", "train", "accounts", cwd=tmp_path)
    assert trained.returncode == 0, trained.stdout + trained.stderr

    from crm2erp.quality.dedupe import Matcher
    from crm2erp.quality.dedupe.config import preset
    from crm2erp.quality.dedupe.model import from_payload
    from crm2erp.testing.company_accounts import predicted_pairs

    model = _stored_model(tmp_path)
    for comparison in model.model["comparisons"]:
        m, u = np.array(comparison["m"]), np.array(comparison["u"])
        assert (m[:-1] >= u[:-1]).all() and m[-1] <= u[-1], comparison
    city = next(c for c in model.model["comparisons"] if c["comparison"] == "city")
    assert np.log2(city["m"][0] / city["u"][0]) < 3      # a shared city is weak evidence
    config = preset("account")
    found = predicted_pairs(Matcher(config, from_payload(config, model.model, "accounts"))
                            .dedupe(records))
    true_found = len(found & truth)
    precision, recall = true_found / len(found), true_found / len(truth)
    assert precision >= 0.98 and recall >= 0.95, (precision, recall)


def test_a_model_trained_for_other_comparisons_stops_the_sync_asking_to_train_again(tmp_path):
    state = _project(tmp_path, [MUELLER, *generated_rows(100, seed=5)])
    assert crm2erp(*state, "dedupe", "train", "accounts", cwd=tmp_path).returncode == 0
    flow = tmp_path / "project" / "accounts.flow.yaml"
    flow.write_text(flow.read_text().replace("preset: account", "config: match.yaml"))

    run = crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)

    assert run.returncode == 2, run.stdout + run.stderr
    assert "trained for other comparisons" in run.stderr
    assert "crm2erp dedupe train accounts again" in run.stderr
    assert "Traceback" not in run.stderr and erp_customers(tmp_path) == []

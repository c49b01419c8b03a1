"""The shipped ``account`` preset in a real sync, one record per batch (issue 13)."""

from __future__ import annotations

from tests.cli.test_dedupe_cli import crm2erp
from tests.quality.dedupe_project import account, add_crm_accounts, erp_customers, make_project


def test_mueller_bau_in_small_batches_is_one_erp_customer(tmp_path):
    first = account(1, "Müller Bau GmbH", phone="+49 30 1234567", zip="10115")
    project = make_project(tmp_path, [first])
    flow = project / "accounts.flow.yaml"
    text = flow.read_text().replace("config: match.yaml", "preset: account")
    flow.write_text(text.replace("batch_size: 100", "batch_size: 1"))
    state = ["-p", str(project), "--state", f"sqlite:///{tmp_path / 'state.db'}"]

    run = crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    # later, in its own batch: the same company spelt the other way, phone in another format
    add_crm_accounts(tmp_path,
                     account(2, "Mueller Bau G.m.b.H.", phone="030 123 45 67", zip="10115"),
                     account(3, "Nordwind Handel AG", phone="+49 40 7654321", zip="20095",
                             city="Hamburg"))
    run = crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr

    customers = erp_customers(tmp_path)
    assert sorted(c["name"] for c in customers) == ["Mueller Bau G.m.b.H.", "Nordwind Handel AG"] \
        or sorted(c["name"] for c in customers) == ["Müller Bau GmbH", "Nordwind Handel AG"]
    mueller = next(c for c in customers if c["name"] != "Nordwind Handel AG")
    assert mueller["postal_code"] == "10115" and mueller["phone"].replace(" ", "").endswith(
        "301234567")


UNFITTED = """\
entity: account
blocking:
  - [{field: name, transform: [company, first:4]}]
comparisons:
  - {field: name, method: jaro_winkler, transform: company, thresholds: [0.88]}
  - {field: billing_address.city, name: city, method: exact, transform: name}
"""


def test_an_implausible_fit_stops_the_sync_with_a_message_and_loads_nothing(tmp_path):
    rows = [account(i, "Acme GmbH", city="Berlin") for i in range(1, 31)]
    project = make_project(tmp_path, rows)
    (project / "match.yaml").write_text(UNFITTED)
    state = ["-p", str(project), "--state", f"sqlite:///{tmp_path / 'state.db'}"]

    run = crm2erp(*state, "sync", "run", "accounts", cwd=tmp_path)

    assert run.returncode == 2, run.stdout + run.stderr
    assert "implausible" in run.stderr and "Traceback" not in run.stderr
    assert erp_customers(tmp_path) == []

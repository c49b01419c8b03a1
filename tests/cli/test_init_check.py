"""``crm2erp init`` and ``crm2erp check`` as a user runs them: a real process, real files."""

from __future__ import annotations

import json
import sqlite3

from tests.cli.test_cli import crm2erp

CSV = ("id,name,email,city,country,updated_at\n"
       "1,Acme GmbH,info@acme.de,Berlin,DE,2024-01-01T10:00:00Z\n"
       "2,  Nordwind   AG ,x@nordwind.ch,Zürich,CH,2024-01-02T10:00:00Z\n")


def _fill(tmp_path, table_sql="CREATE TABLE customers (id INTEGER PRIMARY KEY, "
          "crm_ref varchar(64) UNIQUE, name TEXT, email TEXT, city TEXT, country TEXT)"):
    data = tmp_path / "data"
    data.mkdir()
    (data / "accounts.csv").write_text(CSV, encoding="utf-8")
    db = tmp_path / "erp.db"
    with sqlite3.connect(db) as conn:
        conn.execute(table_sql)
    return {"CRM_CSV_DIR": str(data), "ERP_DATABASE_URL": f"sqlite:///{db}"}, db


def test_init_csv_to_sqlite_checks_validates_and_syncs(tmp_path):
    made = crm2erp("init", "proj", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    proj = tmp_path / "proj"
    for name in ("connections.yaml", "accounts.flow.yaml", "maps/accounts.in.map.yaml",
                 "maps/customers.out.map.yaml", ".env.example", "crm2erp.yaml"):
        assert (proj / name).is_file(), name
    assert "${CRM_CSV_DIR}" in (proj / "connections.yaml").read_text()
    example = (proj / ".env.example").read_text()
    assert "CRM_CSV_DIR=" in example and "ERP_DATABASE_URL=" in example
    env, db = _fill(tmp_path)
    checked = crm2erp("-p", "proj", "check", cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "crm" in checked.stdout and "erp" in checked.stdout and "failed" not in checked.stdout
    valid = crm2erp("-p", "proj", "mappings", "validate", cwd=tmp_path, env=env)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    synced = crm2erp("-p", "proj", "sync", "run", cwd=tmp_path, env=env)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    with sqlite3.connect(db) as conn:
        rows = sorted(conn.execute("SELECT name, email, city, country FROM customers"))
    assert rows == [("Acme GmbH", "info@acme.de", "Berlin", "DE"),
                    ("Nordwind AG", "x@nordwind.ch", "Zürich", "CH")]
    assert (proj / "state.db").is_file()          # the state lives where crm2erp.yaml says


def test_init_refuses_an_existing_project(tmp_path):
    assert crm2erp("init", "proj", cwd=tmp_path).returncode == 0
    again = crm2erp("init", "proj", cwd=tmp_path)
    assert again.returncode == 2 and "already has connections.yaml" in again.stderr
    assert "Traceback" not in again.stderr


def test_init_from_pack_copies_flows_and_their_mappings(tmp_path):
    made = crm2erp("init", "sf", "--from-pack", "salesforce-sap", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    proj = tmp_path / "sf"
    flow = (proj / "accounts.flow.yaml").read_text()
    assert "mapping: maps/salesforce/account.in.map.yaml" in flow
    assert (proj / "maps/salesforce/account.in.map.yaml").is_file()
    assert "SAP_PASSWORD=" in (proj / ".env.example").read_text()
    valid = crm2erp("-p", "sf", "mappings", "validate", "--offline", cwd=tmp_path)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    unknown = crm2erp("init", "x", "--from-pack", "nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "salesforce-sap" in unknown.stderr


def test_check_names_the_failing_connection_and_exits_2(tmp_path):
    assert crm2erp("init", "proj", cwd=tmp_path).returncode == 0
    env, _ = _fill(tmp_path, "CREATE TABLE other (x TEXT)")   # no customers table
    missing = crm2erp("-p", "proj", "check", "--json", cwd=tmp_path, env=env)
    assert missing.returncode == 2
    report = json.loads(missing.stdout)
    rows = {r["connection"]: r for r in report["connections"]}
    assert report["ok"] is False
    assert rows["crm"]["status"] == "ok" and rows["crm"]["type"] == "file"
    assert rows["erp"]["status"] == "failed" and "customers" in rows["erp"]["detail"]
    assert "connection(s): erp" in missing.stderr
    absent = tmp_path / "absent.db"
    bad_url = crm2erp("-p", "proj", "check", cwd=tmp_path,
                      env={**env, "ERP_DATABASE_URL": f"sqlite:///{absent}"})
    assert bad_url.returncode == 2 and "does not exist" in bad_url.stdout
    assert not absent.exists()                    # checking creates no database
    assert "Traceback" not in missing.stderr + bad_url.stderr


def test_check_reports_a_target_without_a_unique_key(tmp_path):
    assert crm2erp("init", "proj", cwd=tmp_path).returncode == 0
    env, _ = _fill(tmp_path, "CREATE TABLE customers (crm_ref TEXT, name TEXT, email TEXT, "
                   "city TEXT, country TEXT)")
    result = crm2erp("-p", "proj", "check", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "unique" in result.stdout


def test_readme_init_block_runs_as_written(tmp_path):
    """The README's `crm2erp init` block in bash, as a user types it; the test does the
    one manual step (filling in .env) where the block's comment says so."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```bash\n(.*?)```", readme, re.S)
                 if "crm2erp init" in b)
    before, after = block.split("# fill in", 1)
    after = after.split("\n", 1)[1]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "COLUMNS": "200"}
    for key in ("CRM2ERP_PROJECT", "CRM2ERP_STATE_URL"):
        env.pop(key, None)
    first = subprocess.run(["bash", "-ec", before], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert first.returncode == 0, first.stdout + first.stderr
    values, db = _fill(tmp_path)
    (tmp_path / "my-project" / ".env").write_text(
        "".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    rest = subprocess.run(["bash", "-ec", after], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert "Traceback" not in rest.stderr
    with sqlite3.connect(db) as conn:
        assert sorted(conn.execute("SELECT crm_ref IS NOT NULL, name FROM customers")) == [
            (1, "Acme GmbH"), (1, "Nordwind AG")]


def test_check_a_pack_against_its_emulators_and_a_wrong_password(tmp_path):
    """Credentials are checked for real: the pack's Salesforce and SAP emulators accept
    the published test credentials and refuse a wrong password."""
    from crm2erp.emulators.kernel.server import emulator_process

    assert crm2erp("init", "sf", "--from-pack", "salesforce-sap", cwd=tmp_path).returncode == 0
    with emulator_process("crm2erp.emulators.salesforce.app") as sf_url, \
            emulator_process("crm2erp.emulators.sap.app") as sap_url:
        env = {"SF_INSTANCE_URL": sf_url, "SAP_BASE_URL": sap_url}
        good = crm2erp("-p", "sf", "check", "--json", cwd=tmp_path, env=env)
        assert good.returncode == 0, good.stdout + good.stderr
        rows = {r["connection"]: r for r in json.loads(good.stdout)["connections"]}
        assert rows["salesforce"]["status"] == "ok" and rows["sap"]["status"] == "ok"
        assert "business_partners" in rows["sap"]["detail"]
        bad = crm2erp("-p", "sf", "check", "--json", cwd=tmp_path,
                      env={**env, "SAP_PASSWORD": "wrong"})
    assert bad.returncode == 2
    rows = {r["connection"]: r for r in json.loads(bad.stdout)["connections"]}
    assert rows["salesforce"]["status"] == "ok"
    assert rows["sap"]["status"] == "failed" and "401" in rows["sap"]["detail"]
    assert "connection(s): sap" in bad.stderr


def test_init_in_a_folder_with_an_odd_name_keeps_the_state_there(tmp_path):
    name = "odd name #1 'x'"
    assert crm2erp("init", name, cwd=tmp_path).returncode == 0
    env, db = _fill(tmp_path)
    synced = crm2erp("-p", name, "sync", "run", "--json", cwd=tmp_path, env=env)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert json.loads(synced.stdout)["flows"][0]["counts"]["created"] == 2
    assert (tmp_path / name / "state.db").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "erp.db", name]

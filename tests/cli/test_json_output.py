"""``--json``: valid JSON on stdout and nothing else, with the fields a script needs."""

from __future__ import annotations

import json
import sqlite3

from tests.cli.test_cli import BAD_FLOW, crm2erp

CSV = ("id,name,email,city,country,updated_at\n"
       "1,Acme GmbH,info@acme.de,Berlin,DE,2024-01-01T10:00:00Z\n"
       "2,,nobody@example.org,Bern,CH,2024-01-02T10:00:00Z\n")   # no name: a dead letter


def _project(tmp_path):
    assert crm2erp("init", "proj", cwd=tmp_path).returncode == 0
    return fill_project(tmp_path)


def fill_project(tmp_path) -> dict:
    """The data and ERP database of ``crm2erp init``'s project in ``tmp_path/proj``; the
    environment its connections.yaml asks for."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "accounts.csv").write_text(CSV, encoding="utf-8")
    db = tmp_path / "erp.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, crm_ref TEXT UNIQUE, "
                     "name TEXT, email TEXT, city TEXT, country TEXT)")
    return {"CRM_CSV_DIR": str(tmp_path / "data"), "ERP_DATABASE_URL": f"sqlite:///{db}"}


def _json(*args, cwd, env=None, code=0):
    result = crm2erp(*args, cwd=cwd, env=env)
    assert result.returncode == code, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_json_of_sync_status_and_dead_letters(tmp_path):
    env = _project(tmp_path)
    dry = _json("-p", "proj", "sync", "run", "--dry-run", "--json", cwd=tmp_path, env=env,
                code=1)
    assert dry["dry_run"] is True
    (change,) = dry["flows"][0]["changes"]
    assert change["action"] == "create" and change["fields"]["name"] == "Acme GmbH"
    run = _json("-p", "proj", "sync", "run", "--json", cwd=tmp_path, env=env, code=1)
    flow = run["flows"][0]
    assert run["dry_run"] is False and run["dead_letters"] == 1
    assert flow["flow"] == "accounts" and flow["status"] == "partial"
    assert flow["counts"]["read"] == 2 and flow["counts"]["created"] == 1
    assert flow["counts"]["failed"] == 1 and flow["counts"]["updated"] == 0
    status = _json("-p", "proj", "status", "--json", cwd=tmp_path, env=env)
    (row,) = status["flows"]
    assert row["flow"] == "accounts" and row["dead_letters"] == 1
    assert row["last_run"]["id"] == flow["run_id"] and row["last_run"]["status"] == "partial"
    assert row["watermark"].startswith("2024-01-02")
    assert status["runs"][0]["id"] == flow["run_id"] and status["runs"][0]["created"] == 1
    letters = _json("-p", "proj", "dlq", "list", "--json", cwd=tmp_path, env=env)
    (letter,) = letters["dead_letters"]
    assert letter["source_key"] == "2" and letter["stage"] == "map"
    assert "name" in letter["error"] and letter["status"] == "open"
    shown = _json("-p", "proj", "dlq", "show", str(letter["id"]), "--json", cwd=tmp_path,
                  env=env)
    assert shown["payload"]["email"] == "nobody@example.org" and shown["run_id"] == flow["run_id"]
    assert _json("-p", "proj", "conflicts", "--json", cwd=tmp_path, env=env) == {"conflicts": []}
    assert _json("-p", "proj", "dedupe", "list", "--json", cwd=tmp_path, env=env) == {"pairs": []}


def test_validate_json_lists_problems_with_positions(tmp_path):
    path = tmp_path / "bad.flow.yaml"
    path.write_text(BAD_FLOW)
    report = _json("mappings", "validate", str(path), "--json", cwd=tmp_path, code=2)
    assert report["ok"] is False
    where = {(p["line"], p["column"]) for p in report["problems"]}
    assert (3, 1) in where and (7, 15) in where
    assert all(p["file"] == str(path) for p in report["problems"])
    env = _project(tmp_path)
    clean = _json("-p", "proj", "mappings", "validate", "--json", cwd=tmp_path, env=env)
    assert clean["ok"] is True and clean["problems"] == [] and clean["files"] == 5

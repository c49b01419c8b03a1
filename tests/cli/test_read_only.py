"""Commands that only read create no file: no state store outside a project, none
next to a project that has not run yet, nothing new beside one that has; a
command that creates a new state store says so (issue 14)."""

from __future__ import annotations

import os

import pytest

from crm2erp.demo import create_systems, write_project
from crm2erp.demo.sample import sample_crm_rows
from tests.clirunner import run

RECORD = '{"id": "A-1", "company_name": " acme  gmbh ", "account_type": "Kunde"}'
READ_ONLY = [["mappings", "validate"], ["mappings", "explain", "demo_accounts", "--record",
                                        RECORD],
             ["status"], ["status", "--json"], ["report", "1", "--json"], ["dlq", "list"],
             ["dlq", "show", "1"], ["conflicts"], ["dedupe", "list"],
             ["quality", "run", "demo_accounts"], ["unlock", "demo_accounts", "--yes"]]


@pytest.fixture
def cli():
    """Run ``crm2erp ARGS`` in this process, in the test's folder: (exit code, stdout,
    stderr)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CRM2ERP_PROJECT", "CRM2ERP_STATE_URL", "CRM2ERP_LOG_FORMAT")}

    def cli(*args, cwd):
        done = run(args, cwd=cwd, env={**env, "COLUMNS": "200"})
        return done.returncode, done.stdout, done.stderr
    return cli


def _listing(folder) -> dict:
    """Every file under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def demo(tmp_path):
    """The demo's project and systems, not synced yet: no state store."""
    create_systems(f"sqlite:///{tmp_path}/crm.db", f"sqlite:///{tmp_path}/erp.db",
                   sample_crm_rows(accounts=20))
    return write_project(tmp_path, tmp_path / "state.db", fresh=True)


def test_read_only_commands_create_nothing_in_an_empty_folder(tmp_path, cli):
    for args in READ_ONLY:
        code, out, err = cli(*args, cwd=tmp_path)
        assert "Traceback" not in err and code in (0, 2), (args, out, err)
        assert list(tmp_path.iterdir()) == [], args


def test_read_only_commands_leave_a_project_as_it_was_before_and_after_a_run(demo, tmp_path,
                                                                              cli):
    before = _listing(tmp_path)
    for args in READ_ONLY:
        code, out, err = cli("-p", str(demo), *args, cwd=tmp_path)
        assert "Traceback" not in err, args
        assert _listing(tmp_path) == before, args
    assert not (tmp_path / "state.db").exists()
    code, out, err = cli("-p", str(demo), "status", cwd=tmp_path)
    assert code == 0 and "never" in out
    assert "no state store at" in err and "not created" in err

    code, out, err = cli("-p", str(demo), "sync", "run", "demo_accounts", cwd=tmp_path)
    assert code == 1, err                              # the demo holds records back
    said = "".join(err.split())                        # however the log line was wrapped
    assert "creatinganew,emptyone" in said and "state.db" in said
    assert (tmp_path / "state.db").is_file()
    code, out, err = cli("-p", str(demo), "sync", "run", "demo_accounts", cwd=tmp_path)
    assert "creating" not in err                       # said once, when it happened
    after = _listing(tmp_path)
    for args in READ_ONLY[:-1]:                        # unlock: nothing locked, nothing done
        code, out, err = cli("-p", str(demo), *args, cwd=tmp_path)
        assert "Traceback" not in err, args
        assert _listing(tmp_path) == after, args
    code, out, err = cli("-p", str(demo), "dlq", "list", cwd=tmp_path)
    assert "A-0007" in out                              # it read the real store

"""CLI conventions: completion, bare flags in help, emulator help and banner, schemas export."""

from __future__ import annotations

import subprocess
import sys

from tests.cli.test_cli import crm2erp


def test_help_offers_completion_and_shows_flags_without_value_hints(tmp_path):
    result = crm2erp("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout
    assert "<bool>" not in result.stdout                 # --debug, --version: bare flags
    line = next(x for x in result.stdout.splitlines() if "--verbose" in x)
    assert "<int>" not in line                           # -v counts, takes no value
    assert "<path>" in result.stdout                     # options with a value keep it
    sync = crm2erp("sync", "run", "--help", cwd=tmp_path)
    assert "--dry-run" in sync.stdout and "<bool>" not in sync.stdout
    assert "<str>" in next(x for x in sync.stdout.splitlines() if "--since" in x)


def test_emulator_run_name_help_is_the_emulators_own(tmp_path):
    own = crm2erp("emulator", "run", "sap", "--help", cwd=tmp_path)
    assert own.returncode == 0, own.stderr
    assert "--business-partners" in own.stdout and "--fault-rate" in own.stdout
    ours = crm2erp("emulator", "run", "--help", cwd=tmp_path)
    assert ours.returncode == 0 and "Connector name" in ours.stdout


def test_emulator_prints_its_base_url_and_credentials_on_start(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "crm2erp", "emulator", "run", "sap",
                             "--port", "0"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stderr.readline()     # the first line; EOF ("") if it died first
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert banner.startswith("SAP emulator on http://127.0.0.1:"), banner
    assert "EMU_USER" in banner and "EMU_PASSWORD" in banner


def test_schemas_export_writes_to_the_working_folder_by_default(tmp_path):
    result = crm2erp("schemas", "export", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "json-schemas" / "Account.schema.json").is_file()
    assert (tmp_path / "json-schemas" / "mapping.schema.json").is_file()
    assert "json-schemas" in result.stdout

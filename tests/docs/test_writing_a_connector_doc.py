"""docs/writing-a-connector.md builds a working connector: its code blocks, written to
the files their first lines name, pass the conformance suite (the page's own command)."""

import os
import re
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "writing-a-connector.md"
BLOCK = re.compile(r"```python\n# (\S+\.py)\n(.*?)```", re.S)


def test_the_example_connector_passes_the_conformance_suite(tmp_path):
    text = PAGE.read_text()
    files = BLOCK.findall(text)
    assert [name for name, _ in files] == ["notes_crm/config.py", "notes_crm/connector.py",
                                          "notes_crm/emulator.py", "test_notes_conformance.py"]
    for name, body in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    (tmp_path / "notes_crm" / "__init__.py").write_text("")
    command = re.search(r"Run it with `(pytest [^`]+)`", text)[1].split()
    assert command == ["pytest", "test_notes_conformance.py"]
    done = subprocess.run([sys.executable, "-m", *command, "-q", "-p", "no:cacheprovider"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.match(r"15 passed\b", summary) and "failed" not in summary, summary

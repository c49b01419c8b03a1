"""Every row of a connector page's error table names tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["salesforce", "hubspot", "dynamics", "odoo", "sap", "erpnext"]
SOURCES = "\n".join(p.read_text() for p in [*ROOT.glob("tests/**/*.py"),
                                             ROOT / "crm2erp/testing/conformance.py"])


def table_rows(page: str) -> list[str]:
    text = (ROOT / "docs/connectors" / f"{page}.md").read_text()
    section = text.split("## Limits and errors", 1)[1] if "## Limits and errors" in text \
        else text.split("## Errors", 1)[1]
    return [line for line in section.split("\n## ", 1)[0].splitlines()
            if line.startswith("| ") and "| test |" not in line]


@pytest.mark.parametrize("page", PAGES)
def test_each_error_table_row_names_existing_tests(page):
    rows = table_rows(page)
    assert len(rows) >= 6
    for row in rows:
        named = re.findall(r"`(test_\w+)`", row.rsplit("|", 2)[-2])
        assert named, f"{page}: a row without a test: {row}"
        for name in named:
            assert re.search(rf"def {name}\(", SOURCES), f"{page}: no test {name}"

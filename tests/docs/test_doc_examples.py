"""Every whole flow or mapping file shown in the docs loads (examples stay true)."""

import re
from pathlib import Path

import pytest

from crm2erp.mapping import compile_mapping, load_flow, load_mapping

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"```yaml[^\n]*\n(.*?)```", re.S)


def _examples():
    for page in sorted(DOCS.rglob("*.md")):
        for n, body in enumerate(BLOCK.findall(page.read_text())):
            first = next((line for line in body.splitlines()
                          if line.strip() and not line.startswith("#")), "")
            if first.startswith(("flow:", "mapping:")):
                yield pytest.param(page, body, first.split(":")[0],
                                   id=f"{page.relative_to(DOCS)}#{n}")


@pytest.mark.parametrize("page,body,kind", list(_examples()))
def test_doc_example_loads(page, body, kind, tmp_path):
    path = tmp_path / f"example.{'flow' if kind == 'flow' else 'map'}.yaml"
    path.write_text(body)
    if kind == "flow":
        assert load_flow(path).flow
    else:
        compile_mapping(load_mapping(path), system="doc")

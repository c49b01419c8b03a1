"""libyaml (CSafeLoader) parses, the positions stay those of the pure-Python loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from crm2erp.mapping import yamlpos
from crm2erp.mapping.yamlpos import YamlDoc, load_yaml

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for d in ("mappings", "quality", "schemas") for p in (REPO / d).rglob("*.yaml"))


def _both(text: str) -> tuple[YamlDoc, YamlDoc]:
    fast = yamlpos._parse(YamlDoc("f.yaml"), text, yamlpos._FastLoader)
    pure = yamlpos._parse(YamlDoc("f.yaml"), text, yamlpos._Loader)
    return fast, pure


def test_libyaml_is_used_when_pyyaml_has_it():
    assert yaml.__with_libyaml__, "PyYAML without libyaml: the dev install should have it"
    assert issubclass(yamlpos._FastLoader, yaml.CSafeLoader)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_file_gives_the_same_data_and_positions(path):
    assert SHIPPED
    fast, pure = _both(path.read_text(encoding="utf-8"))
    assert (fast.data, fast.keys, fast.values, fast.issues) == \
        (pure.data, pure.keys, pure.values, pure.issues)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12),
                     st.sampled_from(["NO", "yes", "on", "~", "1e3", "2024-05-01", "0x1F"]))
_trees = st.recursive(_scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(min_size=1, max_size=8), kids,
                                                max_size=4)), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(tree=_trees, flow=st.booleans())
def test_hostile_documents_give_the_same_data_and_positions(tree, flow):
    text = yaml.safe_dump({"root": tree}, default_flow_style=flow, allow_unicode=True)
    fast, pure = _both(text)
    assert (fast.data, fast.keys, fast.values, fast.issues) == \
        (pure.data, pure.keys, pure.values, pure.issues)


def test_a_syntax_error_is_worded_and_placed_as_before():
    text = "a: 1\nb: [1, 2\nc: 3\n"
    doc = load_yaml("f.yaml", text=text)
    with pytest.raises(yaml.YAMLError) as pure:
        yamlpos._parse(YamlDoc("f.yaml"), text, yamlpos._Loader)
    assert doc.data is None and doc.issues == [yamlpos._yaml_issue("f.yaml", pure.value)]


def test_duplicate_keys_are_still_reported_with_libyaml():
    doc = load_yaml("f.yaml", text="a: 1\nb: 2\na: 3\n")
    assert [(i.line, i.column) for i in doc.issues] == [(3, 1)]
    assert "duplicate key 'a' (first defined at line 1)" in doc.issues[0].message

from __future__ import annotations

from crm2erp.mapping.yamlpos import interpolate_env, load_yaml

TEXT = """\
a: 1
b:
  c: [x, y]
  d: {e: NO}
"""


def test_positions_of_keys_and_values():
    doc = load_yaml("f.yaml", text=TEXT)
    assert doc.issues == []
    assert doc.keys[("b", "c")] == (3, 3)
    assert doc.values[("b", "c")] == (3, 6)
    assert doc.values[("b", "c", 1)] == (3, 10)
    assert doc.keys[("b", "d", "e")] == (4, 7)


def test_yaml_1_2_booleans_keep_country_codes():
    doc = load_yaml("f.yaml", text=TEXT + "f: yes\ng: true\n")
    assert doc.data["b"]["d"]["e"] == "NO"
    assert doc.data["f"] == "yes"
    assert doc.data["g"] is True


def test_missing_path_falls_back_to_parent():
    doc = load_yaml("f.yaml", text=TEXT)
    issue = doc.issue(("b", "d", "missing"), "boom")
    assert (issue.line, issue.column) == (4, 6)


def test_syntax_error_has_position():
    doc = load_yaml("f.yaml", text="a: 1\nb: [1, 2\nc: 3\n")
    assert doc.data is None
    assert len(doc.issues) == 1
    issue = doc.issues[0]
    assert issue.file == "f.yaml" and issue.line == 3
    assert "YAML syntax error" in issue.message


def test_bad_indentation_is_a_syntax_error():
    doc = load_yaml("f.yaml", text="a:\n  b: 1\n c: 2\n")
    assert doc.issues and doc.issues[0].line == 3


def test_duplicate_key_is_reported():
    doc = load_yaml("f.yaml", text="a: 1\nb: 2\na: 3\n")
    assert len(doc.issues) == 1
    assert (doc.issues[0].line, doc.issues[0].column) == (3, 1)
    assert "duplicate key 'a'" in doc.issues[0].message
    assert "line 1" in doc.issues[0].message


def test_missing_file_is_an_issue(tmp_path):
    doc = load_yaml(tmp_path / "nope.yaml")
    assert doc.issues[0].message == "file not found"


def test_env_interpolation():
    doc = load_yaml("c.yaml", text="a: ${HOME_X}/db\nb: ${NOPE:-fallback}\nc: $${LIT}\n")
    issues = interpolate_env(doc, {"HOME_X": "/h"})
    assert issues == []
    assert doc.data == {"a": "/h/db", "b": "fallback", "c": "${LIT}"}


def test_env_interpolation_missing_variable():
    doc = load_yaml("c.yaml", text="a: ok\nb:\n  url: x-${MISSING_VAR}\n")
    issues = interpolate_env(doc, {})
    assert len(issues) == 1
    assert (issues[0].line, issues[0].column) == (3, 8)
    assert "MISSING_VAR" in issues[0].message

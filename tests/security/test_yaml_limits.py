"""Hostile YAML is refused quickly, with a message naming the file."""

from __future__ import annotations

import pytest

from crm2erp.mapping.yamlpos import load_yaml
from tests.security.project import run

LEVELS = "abcdefghijklmnopqrstuvwxyz"


def alias_bomb(levels: int = 12) -> str:
    lines = [f'{LEVELS[0]}: &{LEVELS[0]} ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip(LEVELS, LEVELS[1:levels], strict=False):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def merge_bomb(levels: int = 40) -> str:
    lines = ["m0: &m0 {k: 1}"]
    for i in range(1, levels):
        lines.append(f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text", [alias_bomb(), merge_bomb()], ids=["aliases", "merge-keys"])
def test_expansion_bombs_are_one_issue_and_never_expanded(tmp_path, text):
    path = tmp_path / "bomb.map.yaml"
    path.write_text(text, encoding="utf-8")
    doc = load_yaml(path)
    assert doc.data is None
    [issue] = doc.issues
    assert issue.file == str(path) and "alias" in issue.message


def test_normal_aliases_still_work(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {x: 1}\nother: {<<: *b, y: 2}\nlist: [*b, *b]\n")
    doc = load_yaml(path)
    assert not doc.issues
    assert doc.data == {"base": {"x": 1}, "other": {"x": 1, "y": 2}, "list": [{"x": 1}] * 2}


@pytest.mark.parametrize("name,text", [
    ("bomb.flow.yaml", alias_bomb()),
    ("connections.yaml", "connections:\n" + "".join(
        "  " + line + "\n" for line in alias_bomb().splitlines())),
    ("deep.map.yaml", "a: " + "[" * 20000 + "]" * 20000 + "\n"),
])
def test_mappings_validate_answers_with_a_message_and_exit_2(tmp_path, capsys, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    code, out, err = run(capsys, "mappings", "validate", str(path))
    assert code == 2, out + err
    assert str(path) in out and "Traceback" not in out + err
    assert ("alias" in out) or ("nested too deeply" in out)

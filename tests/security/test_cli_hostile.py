"""Hostile text through every command that prints user data: shown literally.

A fixed corpus (rich markup, a terminal hyperlink, control characters, ANSI
escapes, bidi overrides, HTML, undecodable command-line bytes) goes into the
state store and the command line; each command must exit as documented, print
no traceback, show printable values exactly as they are, and send no control
character to the terminal (they appear as visible escapes like ``\\x1b``).
"""

from __future__ import annotations

import io
import sys
from html.parser import HTMLParser

import pytest

from crm2erp.store import StateStore
from crm2erp.store.dedupe import DedupePair
from crm2erp.store.records import BatchCommit, ConflictRecord, NewDeadLetter
from tests.security.project import make_project, run

# value -> how the terminal must show it
HOSTILE = {
    "[/]": "[/]",
    "[link=http://x]click[/link]": "[link=http://x]click[/link]",
    "[bold]bold[/bold] [red]red": "[bold]bold[/bold] [red]red",
    "<img src=x onerror=alert(1)>": "<img src=x onerror=alert(1)>",
    "ctrl\x07bell\x08back": "ctrl\\x07bell\\x08back",
    "\x1b[31mred\x1b[0m \x1b]8;;http://x\x07link": "\\x1b[31mred\\x1b[0m \\x1b]8;;http://x\\x07link",
    "\u202eevil\u202c": "\\u202eevil\\u202c",
    "bad \ufffd end\\": "bad \ufffd end\\",
}
CONTROL = [chr(c) for c in (*range(0, 9), *range(11, 32), *range(127, 160))] + ["\u202e"]


def assert_safe(code: int, out: str, err: str, expected_code: int, shown=()):
    text = out + err
    assert code == expected_code, text
    assert "Traceback" not in text
    assert not [c for c in CONTROL if c in text], repr(text)
    for value in shown:
        assert HOSTILE[value] in text, (HOSTILE[value], text)


@pytest.fixture(autouse=True)
def _wide(monkeypatch):
    from crm2erp.cli import output

    monkeypatch.setattr(output.console, "width", 4000)
    monkeypatch.setattr(output.err_console, "width", 4000)


@pytest.fixture
def seeded(tmp_path):
    p = make_project(tmp_path, [{"id": "A1", "name": "Acme", "email": "a@example.com"}])
    store = StateStore.open(p["state"])
    run_id = store.start_run("accounts", "incremental")
    store.commit_batch(BatchCommit(run_id=run_id, flow="accounts", dead_letters=[
        NewDeadLetter("map", value, f"bad value {value}", {"name": value, "n": i})
        for i, value in enumerate(HOSTILE)]))
    store.commit_batch(BatchCommit(run_id=run_id, flow="accounts", conflicts=[
        ConflictRecord("Account", f"c{i}-0000-0000", value, "crm", value, value, "erp", "owner")
        for i, value in enumerate(HOSTILE)]))
    store.finish_run(run_id, "partial", warnings=[f"warned {v}" for v in HOSTILE])
    store.save_dedupe_pairs([
        DedupePair(entity="account", left_id=f"L{i}", right_id=f"R{i}", flow="accounts",
                   status="pending", reason="similar", match_probability=0.9 - i / 100,
                   match_weight=1.0, left_label=value, right_label=value,
                   details={"left": {"label": value, "record": {"name": value, "city": value}},
                            "right": {"label": value, "record": {"name": value}},
                            "fields": [{"field": "name", "comparison": value, "left": value,
                                        "right": value, "label": value, "score": 0.5,
                                        "weight": 1.0}]})
        for i, value in enumerate(HOSTILE)])
    letters = {d.source_key: d.id for d in store.dead_letters("accounts")}
    pairs = {p.left_label: p.id for p in store.dedupe_pairs(flow="accounts")}
    store.close()
    return {**p, "run_id": run_id, "letters": letters, "pairs": pairs}


def test_dlq_list_and_show(seeded, capsys):
    args = seeded["args"]
    assert_safe(*run(capsys, *args, "dlq", "list"), 0, shown=HOSTILE)
    for value, letter_id in seeded["letters"].items():
        code, out, err = run(capsys, *args, "dlq", "show", str(letter_id))
        assert_safe(code, out, err, 0, shown=[value])
        assert f"bad value {HOSTILE[value]}" in out


def test_dedupe_list_show_and_review(seeded, capsys, monkeypatch):
    args = seeded["args"]
    assert_safe(*run(capsys, *args, "dedupe", "list"), 0, shown=HOSTILE)
    for value, pair_id in seeded["pairs"].items():
        assert_safe(*run(capsys, *args, "dedupe", "show", str(pair_id)), 0, shown=[value])
    monkeypatch.setattr(sys, "stdin", io.StringIO("s\n" * len(HOSTILE)))
    code, out, err = run(capsys, *args, "dedupe", "review", "--by", "[bold]x")
    assert_safe(code, out, err, 0, shown=HOSTILE)
    assert f"0 accepted, 0 rejected, {len(HOSTILE)} skipped" in out


def test_status_conflicts_and_unlock_show_values_literally(seeded, capsys):
    assert_safe(*run(capsys, *seeded["args"], "status"), 0, shown=HOSTILE)
    assert_safe(*run(capsys, *seeded["args"], "conflicts"), 0, shown=HOSTILE)
    for value in HOSTILE:
        assert_safe(*run(capsys, *seeded["args"], "unlock", value, "--yes"), 0,
                    shown=[value])


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "script":
            self.scripts.append(dict(attrs).get("src"))

    def handle_data(self, data):
        self.text.append(data)


def test_report_escapes_html_and_loads_no_external_script(seeded, capsys, tmp_path):
    args, run_id = seeded["args"], str(seeded["run_id"])
    out_dir = tmp_path / "report"
    code, out, err = run(capsys, *args, "report", run_id, "--out", str(out_dir))
    assert_safe(code, out, err, 0)
    out_file = out_dir / f"run-{run_id}.html"
    page = _Page()
    page.feed(out_file.read_text(encoding="utf-8"))
    assert "img" not in page.tags                       # the CRM's HTML stays text
    assert not [s for s in page.scripts if s]          # no <script src=...> at all
    assert "<img src=x onerror=alert(1)>" in "".join(page.text)
    assert "gx-docs" not in out_file.read_text(encoding="utf-8")
    assert_safe(*run(capsys, *args, "report", run_id, "--json"), 0, shown=["[/]"])


def test_mappings_explain_shows_record_values_literally(seeded, capsys):
    import json

    record = json.dumps({"id": "[/]", "name": "[link=http://x]click[/link]",
                         "email": "not [bold]mail", "note": "\x1b[31mred\x1b[0m"})
    code, out, err = run(capsys, *seeded["args"], "mappings", "explain", "accounts",
                         "--record", record)
    assert_safe(code, out, err, 0, shown=["[link=http://x]click[/link]"])
    assert "not [bold]mail" in out


@pytest.mark.parametrize("value", list(HOSTILE) + ["undecodable \udcff\udcfe bytes"])
def test_top_level_errors_print_the_value_literally(seeded, capsys, value):
    args = seeded["args"]
    shown = HOSTILE.get(value, "undecodable \\udcff\\udcfe bytes")
    for argv in (["dlq", "list", "--status", value],
                 ["dedupe", "list", "--status", value],
                 ["mappings", "explain", value, "--record", "{}"],
                 ["mappings", "explain", "accounts", "--record", "@" + value],
                 ["sync", "run", value]):
        code, out, err = run(capsys, *args, *argv)
        assert_safe(code, out, err, 2)
        assert shown in err, (argv, err)
    code, out, err = run(capsys, "-p", value, "status")
    assert_safe(code, out, err, 2)


@pytest.mark.parametrize("argv", [
    ["sap", "--business-partners", "0"], ["sap", "--page-size", "-1"],
    ["salesforce", "--accounts", "x"], ["hubspot", "--fault-rate", "2"],
    ["odoo", "--port", "70000"], ["rest", "--organizations", "[/]"],
])
def test_emulator_options_out_of_range_are_usage_errors(capsys, argv):
    code, out, err = run(capsys, "emulator", "run", *argv)
    assert_safe(code, out, err, 2)
    assert "error: argument" in err

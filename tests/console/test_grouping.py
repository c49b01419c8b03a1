"""Grouping dead letters by reason, and rendering any text as text (property-based)."""

import datetime as dt
import html
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from crm2erp.console.views import environment, group_letters  # noqa: E402
from crm2erp.store.records import DeadLetter  # noqa: E402

NOW = dt.datetime(2026, 12, 6, 12, 0)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
letters = st.lists(st.builds(
    lambda i, flow, stage, error, key, status: DeadLetter(
        id=i, flow=flow, run_id=None, stage=stage, source_key=key, error=error,
        payload={"name": error}, attempts=1, status=status, created_at=NOW,
        updated_at=NOW),
    st.integers(1, 10**6), st.sampled_from(["f1", "f2"]), st.sampled_from(["map", "parked"]),
    st.one_of(st.sampled_from(["<img src=x onerror=alert(1)>", "[link=x]y[/link]", "a"]),
              texts),
    texts, st.sampled_from(["open", "parked"])), max_size=30, unique_by=lambda x: x.id)


@settings(max_examples=60, deadline=None)
@given(letters)
def test_every_letter_is_in_exactly_one_group_of_its_reason(found):
    grouped = group_letters(found)
    assert sorted(x.id for _, members in grouped for x in members) == sorted(
        x.id for x in found)
    for (flow, stage, error), members in grouped:
        assert all((x.flow, x.stage, x.error) == (flow, stage, error) for x in members)
    order = [(not any(x.status == "open" for x in members), -len(members))
             for _, members in grouped]
    assert order == sorted(order)        # groups to fix first, then the largest
    assert len({key for key, _ in grouped}) == len(grouped)


@settings(max_examples=60, deadline=None)
@given(letters)
def test_the_dead_letters_page_shows_any_reason_and_key_as_text(found):
    page = environment("token").get_template("dead_letters.html").render(
        groups=group_letters(found), total=len(found), flow=None, stage=None, reason="",
        status="actionable", statuses=("actionable",), flows=["f1", "f2"],
        stages=["map", "parked"])
    # the only elements are the template's own: nothing from the data became markup
    tags = {t for t in re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", page)}
    assert tags <= {"html", "head", "meta", "title", "link", "body", "header", "strong", "nav",
                    "a", "main", "h1", "h2", "form", "label", "select", "option", "button",
                    "p", "section", "input", "span", "details", "summary", "ul", "li",
                    "script"}
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/keys.js" defer>']
    shown = html.unescape(page)
    for letter in found:
        assert letter.error in shown and letter.source_key in shown

"""The flow's ``on_dead_letters:`` webhook: a real HTTP server on localhost gets
the POST after a run with new dead letters or a quality breach, and the body
matches what the state store recorded."""

from __future__ import annotations

import json

import pytest

from crm2erp.demo import create_systems, write_project
from crm2erp.demo.sample import sample_crm_rows
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.engine import Engine
from crm2erp.errors import FatalError
from crm2erp.mapping import load_project
from crm2erp.store import COUNT_FIELDS, StateStore


class Hook:
    """A WSGI webhook that keeps every JSON body it was sent."""

    def __init__(self, status: str = "204 No Content"):
        self.bodies, self.status = [], status

    def __call__(self, environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        self.bodies.append((environ["REQUEST_METHOD"], environ["CONTENT_TYPE"],
                            json.loads(environ["wsgi.input"].read(size))))
        start_response(self.status, [])
        return [b""]


@pytest.fixture
def demo(tmp_path):
    create_systems(f"sqlite:///{tmp_path}/crm.db", f"sqlite:///{tmp_path}/erp.db",
                   sample_crm_rows(accounts=30))
    project = write_project(tmp_path, tmp_path / "state.db", fresh=True)
    store = StateStore.open(f"sqlite:///{tmp_path}/state.db")
    yield project, store
    store.close()


def add_to_flow(project, text):
    flow = project / "accounts.flow.yaml"
    flow.write_text(flow.read_text() + text)


def test_new_dead_letters_post_once_and_a_clean_rerun_posts_nothing(demo):
    project, store = demo
    hook = Hook()
    with serve_wsgi(hook) as url:
        add_to_flow(project, f"on_dead_letters: {url}/hooks/crm2erp\n")
        with Engine(load_project(project), store) as engine:
            first = engine.run("demo_accounts")
            [(method, content_type, body)] = hook.bodies
            second = engine.run("demo_accounts")
    assert (method, content_type) == ("POST", "application/json")
    letters = store.dead_letters(status=("open",), limit=100)
    assert first.new_dead_letters == len(letters) > 0
    assert body["event"] == "dead_letters" and body["flow"] == "demo_accounts"
    assert body["run_id"] == first.run_id and body["status"] == "partial"
    assert body["new_dead_letters"] == len(letters)
    run = store.get_run(first.run_id)
    assert body["counts"] == {name: run.counts[name] for name in COUNT_FIELDS}
    assert body["quality_breach"] is None
    assert body["hint"] == "crm2erp dlq list --flow demo_accounts"
    assert second.new_dead_letters == 0 and len(hook.bodies) == 1


def test_a_quality_breach_posts_the_breach(demo):
    project, store = demo
    hook = Hook()
    with serve_wsgi(hook) as url:
        add_to_flow(project, f"on_dead_letters: {url}/hook\n")
        flow = project / "accounts.flow.yaml"   # a second rule, in the flow's quality section
        flow.write_text(flow.read_text().replace(
            "quality:\n  rules:\n",
            "quality:\n  threshold: 1%\n  rules:\n"
            "    - expect: expect_column_values_to_be_in_set\n"
            "      column: currency\n      kwargs: {value_set: [XXX]}\n"))
        with Engine(load_project(project), store) as engine, \
                pytest.raises(FatalError) as stopped:
            engine.run("demo_accounts")
    [(_, _, body)] = hook.bodies
    assert body["event"] == "quality_breach" and body["status"] == "stopped"
    assert body["quality_breach"] == str(stopped.value)
    assert store.get_run(body["run_id"]).status == "stopped"


def test_an_unreachable_webhook_is_a_warning_and_the_run_stands(demo, caplog):
    project, store = demo
    with serve_wsgi(Hook()) as url:
        pass                                   # the port is closed again
    add_to_flow(project, f"on_dead_letters: {url}/hook\n")
    with Engine(load_project(project), store) as engine:
        result = engine.run("demo_accounts")
    assert result.status == "partial"
    assert store.get_run(result.run_id).status == "partial"
    assert "on_dead_letters webhook could not be reached" in caplog.text


def test_an_error_answer_is_a_warning_naming_the_status(demo, caplog):
    project, store = demo
    with serve_wsgi(Hook("500 Internal Server Error")) as url:
        add_to_flow(project, f"on_dead_letters: {url}/hook\n")
        with Engine(load_project(project), store) as engine:
            engine.run("demo_accounts")
    assert "on_dead_letters webhook answered HTTP 500" in caplog.text

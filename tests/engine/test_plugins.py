"""Batch stages and run hooks are plug-ins found by entry point (crm2erp.registry).

Each test installs a small plug-in package (module + entry_points.txt) and runs
a real flow (SQLite CRM -> SQLite ERP), then reads the ERP table back.
"""

from __future__ import annotations

import importlib
import logging
import sys

import pytest

from crm2erp import registry
from crm2erp.errors import ConfigError
from crm2erp.testing.plugins import install_plugin

STAGES = '''
EVENTS = []


class Recorder:
    def __init__(self, name, reject=None):
        self.name, self.reject = name, reject

    def start(self, ctx):
        EVENTS.append(("start", self.name, ctx.run_id))

    def process(self, items, ctx):
        from crm2erp.engine.stages import Rejection

        EVENTS.append(("process", self.name, ctx.run_id, sorted(i.source_key for i in items)))
        return [Rejection(i, f"{self.name} refuses {i.source_key}", self.name)
                for i in items if i.source_key == self.reject]

    def finish(self, ctx):
        EVENTS.append(("finish", self.name, ctx.run_id))


def late(flow, store):
    return Recorder("late")


def early(flow, store):
    return Recorder("early", reject="A002") if flow.flow == "accounts" else None


late.order = 30
early.order = 25
'''

HOOKS = '''
CALLS = []


def remember(runner, result):
    CALLS.append((runner.flow.flow, result.run_id, result.status))


def broken(runner, result):
    raise RuntimeError("the hook is broken")
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    def install(module, source, entry_points):
        install_plugin(tmp_path / "plugins", module, source, entry_points, monkeypatch)
        return importlib.import_module(module)
    return install


def test_stages_from_entry_points_run_in_order_and_their_rejections_are_dead_letters(
        plugin, account, systems, engine_for):
    stages = plugin("crm2erp_test_stages", STAGES,
                    {registry.STAGES: {"late": "late", "early": "early"}})
    systems.add_accounts(account(1), account(2), account(3))
    engine = engine_for(systems)

    first = engine.run("accounts")
    second = engine.run("accounts", mode="full_refresh")

    processed = [e[1] for e in stages.EVENTS if e[0] == "process"]
    assert processed[:2] == ["early", "late"]                 # ascending `order`
    starts = [e for e in stages.EVENTS if e[0] == "start"]
    assert starts == [("start", "early", first.run_id), ("start", "late", first.run_id),
                      ("start", "early", second.run_id), ("start", "late", second.run_id)]
    assert first.run_id != second.run_id
    assert [e[3] for e in stages.EVENTS if e[:2] == ("process", "late")][0] == ["A001", "A003"]
    # the refused record is a dead letter of the stage, and never reached the ERP
    letters = {d.source_key: d for d in engine.store.dead_letters(flow="accounts")}
    assert set(letters) == {"A002"}
    assert letters["A002"].stage == "early" and "early refuses A002" in letters["A002"].error
    assert {r["name"] for r in systems.erp_rows()} == {"Company 1", "Company 3"}


def test_run_hooks_from_entry_points_see_every_run_and_a_broken_hook_is_only_logged(
        plugin, account, systems, engine_for, caplog):
    hooks = plugin("crm2erp_test_hooks", HOOKS,
                   {registry.HOOKS: {"remember": "remember", "broken": "broken"}})
    systems.add_accounts(account(1))
    engine = engine_for(systems)
    with caplog.at_level(logging.WARNING, logger="crm2erp.engine.stages"):
        result = engine.run("accounts")
    assert result.status == "succeeded"
    assert hooks.CALLS == [("accounts", result.run_id, "succeeded")]
    assert "run hook broken failed for flow accounts" in caplog.text
    assert [r["name"] for r in systems.erp_rows()] == ["Company 1"]


def test_crm2erp_registers_its_own_stages_hooks_and_emulators():
    assert list(registry.available(registry.STAGES)) == ["dedupe", "quality"]
    assert [name for name, _ in registry.load_all(registry.STAGES)] == ["quality", "dedupe"]
    assert {"report", "notify"} <= set(registry.available(registry.HOOKS))
    assert {"salesforce", "sap", "hubspot", "dynamics", "erpnext", "odoo",
            "rest"} <= set(registry.available(registry.EMULATORS))
    assert callable(registry.load(registry.EMULATORS, "rest"))


def test_an_unknown_plugin_name_is_a_config_error_naming_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown emulator 'nope' \(known: dynamics, "):
        registry.load(registry.EMULATORS, "nope")
    with pytest.raises(ConfigError, match="unknown connector type 'nope'.*sql"):
        registry.create_connector("nope", {})


def test_a_connector_entry_point_must_name_a_connector_class(plugin):
    plugin("crm2erp_test_notconnector", "class Thing:\n    pass\n",
           {registry.CONNECTORS: {"thing": "Thing"}})
    with pytest.raises(ConfigError, match="'thing' names .*Thing.*not a crm2erp.contract"):
        registry.create_connector("thing", {})


def test_a_plugin_installed_after_a_look_up_is_found_and_gone_once_removed(tmp_path,
                                                                           monkeypatch):
    """The registry keeps what it read while sys.path and its folders are unchanged:
    a distribution moved into a folder already on sys.path (its modification time
    moves, sys.path stays) is seen by the next look-up, and a folder taken off
    sys.path no longer lends its plug-ins."""
    hook = "def hook(runner, result):\n    pass\n"
    folder = tmp_path / "plugins"
    install_plugin(folder, "crm2erp_test_first", hook, {registry.HOOKS: {"first": "hook"}},
                   monkeypatch)
    assert "first" in registry.available(registry.HOOKS)
    assert "second" not in registry.available(registry.HOOKS)
    with monkeypatch.context() as staging:   # written elsewhere, sys.path restored
        install_plugin(tmp_path / "staging", "crm2erp_test_second", hook,
                       {registry.HOOKS: {"second": "hook"}}, staging)
    path = list(sys.path)
    for name in ("crm2erp_test_second.py", "crm2erp_test_second-0.dist-info"):
        (tmp_path / "staging" / name).rename(folder / name)
    assert sys.path == path
    assert {"first", "second"} <= set(registry.available(registry.HOOKS))
    assert callable(registry.load(registry.HOOKS, "second"))
    monkeypatch.undo()
    sys.modules.pop("crm2erp_test_second", None)
    assert not {"first", "second"} & set(registry.available(registry.HOOKS))

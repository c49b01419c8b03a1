"""crm2erp.testing.once: templates built once, and kept for later test runs."""

from __future__ import annotations

from types import SimpleNamespace

from crm2erp.testing import once


def test_kept_folder_is_in_the_test_cache_and_named_by_the_key(monkeypatch, tmp_path):
    monkeypatch.setenv("CRM2ERP_TEST_CACHE", str(tmp_path / "cache"))
    assert once.kept_folder("db", "ab" * 32) == tmp_path / "cache" / f"db-{'ab' * 12}"
    monkeypatch.delenv("CRM2ERP_TEST_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    kept = tmp_path / "xdg" / "crm2erp-tests" / f"db-{'cd' * 12}"
    assert once.kept_folder("db", "cd" * 32) == kept


def test_a_kept_build_is_reused_by_a_later_run_until_its_key_changes(monkeypatch, tmp_path):
    monkeypatch.setenv("CRM2ERP_TEST_CACHE", str(tmp_path))
    builds = []

    def build(folder):
        builds.append(folder)
        (folder / "db").write_text(f"build {len(builds)}")

    first = once.build_once(once.kept_folder("db", "k1"), "k1", build)
    again = once.build_once(once.kept_folder("db", "k1"), "k1", build)   # a later run
    other = once.build_once(once.kept_folder("db", "k2"), "k2", build)   # other packages
    assert first == again != other and builds == [first, other]
    assert (first / "db").read_text() == "build 1" and (other / "db").read_text() == "build 2"


def test_a_build_that_did_not_finish_is_made_again(monkeypatch, tmp_path):
    monkeypatch.setenv("CRM2ERP_TEST_CACHE", str(tmp_path))
    folder = once.kept_folder("db", "k1")
    folder.mkdir(parents=True)
    (folder / "half").write_text("left by a killed run")   # no stamp
    once.build_once(folder, "k1", lambda f: (f / "db").write_text("whole"))
    assert sorted(p.name for p in folder.iterdir()) == [".built-for", "db"]


def test_installed_key_follows_the_installed_versions_and_what_it_depends_on(monkeypatch):
    key = once.installed_key("script v1")
    assert key == once.installed_key("script v1") != once.installed_key("script v2")
    installed = [SimpleNamespace(metadata={"Name": "trytond"}, version="8.2.0")]
    monkeypatch.setattr(once, "distributions", lambda: installed)
    before = once.installed_key("script v1")
    installed[0].version = "8.2.1"
    assert once.installed_key("script v1") not in (before, key)


def test_installed_key_counts_a_distribution_found_twice_once(monkeypatch):
    """``python -m pytest`` puts the checkout on sys.path, where its ``*.egg-info``
    names the editable install a second time: the key must not change."""
    trytond = SimpleNamespace(metadata={"Name": "trytond"}, version="8.2.0")
    crm2erp = SimpleNamespace(metadata={"Name": "crm2erp"}, version="0.1.0")
    monkeypatch.setattr(once, "distributions", lambda: [trytond, crm2erp])
    once_each = once.installed_key()
    monkeypatch.setattr(once, "distributions", lambda: [crm2erp, trytond, crm2erp])
    assert once.installed_key() == once_each

"""The console's templates are compiled once a process: every environment the
console, the static export and each run report make shares the compiled code,
and a page renders the same from the shared code as from a fresh compile."""

from __future__ import annotations

import jinja2

from crm2erp.console import views


def _error_page(env: jinja2.Environment) -> str:
    return env.get_template("error.html").render(code=404, message="no <such> run")


def test_a_second_environment_reuses_the_compiled_templates(monkeypatch):
    compiled: list[str | None] = []
    real = jinja2.Environment.compile

    def counting(self, source, name=None, filename=None, raw=False, defer_init=False):
        compiled.append(name)
        return real(self, source, name, filename, raw, defer_init)

    monkeypatch.setattr(views, "_COMPILED", views._CompiledTemplates())
    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    first = _error_page(views.environment("token"))
    assert sorted(compiled) == ["base.html", "error.html"]
    again = _error_page(views.environment("token"))
    assert len(compiled) == 2, "the second environment compiled a template again"
    assert again == first
    assert "no &lt;such&gt; run" in first and "Not found" in first

    monkeypatch.setattr(views, "_COMPILED", None)   # no shared code: compiled afresh
    assert _error_page(views.environment("token")) == first
    assert len(compiled) == 4

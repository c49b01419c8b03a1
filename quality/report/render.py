"""Render a collected report as one self-contained HTML page (Jinja2, autoescaped)."""

from __future__ import annotations

__all__ = ["render_html", "render_json"]

import json
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from crm2erp.quality.report.charts import rule_bars, run_bars

_env = Environment(loader=PackageLoader("crm2erp.quality.report", ""),
                   autoescape=select_autoescape(["html", "j2"], default=True),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_html(data: dict[str, Any]) -> str:
    template = _env.get_template("report.html.j2")
    return template.render(**data, rule_chart=rule_bars(data["quality"]["results"]),
                           run_chart=run_bars(data["history"]))


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"

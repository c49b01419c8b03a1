"""The steward report: one self-contained HTML page (and JSON) per run.

``collect`` gathers the data from the state store, ``render_html`` /
``render_json`` render it, ``write_report`` writes both, and
``write_run_report`` is the engine hook that does so after every run.
"""

from crm2erp.quality.report.data import collect
from crm2erp.quality.report.hook import write_report, write_run_report
from crm2erp.quality.report.paths import ENV_REPORTS, reports_dir
from crm2erp.quality.report.render import render_html, render_json

__all__ = ["collect", "render_html", "render_json", "write_report", "write_run_report",
           "reports_dir", "ENV_REPORTS"]

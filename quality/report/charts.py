"""Bar-chart geometry for the report's inline SVG (no JavaScript, no external files).

Python computes the rectangles; the template draws them, so every label
goes through Jinja's autoescaping.
"""

from __future__ import annotations

__all__ = ["rule_bars", "run_bars"]

from typing import Any

SEVERITY_COLOURS = {"critical": "#c0392b", "warning": "#d68910", "info": "#2e86c1"}


def rule_bars(results: list[dict[str, Any]], width: int = 640, bar: int = 22
              ) -> dict[str, Any]:
    """Horizontal bars: failed rows per rule, worst first (rules that failed only)."""
    failing = sorted((r for r in results if r["failed"]), key=lambda r: -r["failed"])[:15]
    label_width, top = 260, 10
    scale = max((r["failed"] for r in failing), default=1)
    bars = []
    for i, result in enumerate(failing):
        length = max(2, round((width - label_width - 60) * result["failed"] / scale))
        bars.append({"label": result["rule"], "value": result["failed"],
                     "x": label_width, "y": top + i * (bar + 6), "width": length,
                     "height": bar, "colour": SEVERITY_COLOURS.get(result["severity"], "#777"),
                     "text_x": label_width + length + 6})
    return {"width": width, "height": top * 2 + len(bars) * (bar + 6),
            "bars": bars, "label_width": label_width}


def run_bars(history: list[dict[str, Any]], width: int = 640, height: int = 180
             ) -> dict[str, Any]:
    """Stacked columns per run: dead-lettered (failed + parked) and quality warnings."""
    if not history:
        return {"width": width, "height": height, "columns": [], "max": 0}
    left, bottom, top = 40, 30, 10
    plot = height - bottom - top
    peak = max(max(h["failed"] + h["parked"] + h["quality_warning"] for h in history), 1)
    step = (width - left - 10) / len(history)
    columns = []
    for i, run in enumerate(history):
        x = left + i * step + step * 0.15
        w = min(max(step * 0.7, 2), 40)
        parts, base = [], height - bottom
        for name, value, colour in (("dead letters", run["failed"] + run["parked"],
                                     SEVERITY_COLOURS["critical"]),
                                    ("warnings", run["quality_warning"],
                                     SEVERITY_COLOURS["warning"])):
            h = plot * value / peak
            if value:
                parts.append({"name": name, "value": value, "y": base - h, "height": h,
                              "colour": colour})
            base -= h
        columns.append({"run_id": run["run_id"], "x": x, "width": w, "parts": parts,
                        "label_x": x + w / 2, "label_y": height - bottom + 14,
                        "status": run["status"]})
    return {"width": width, "height": height, "columns": columns, "max": peak,
            "axis_y": height - bottom, "left": left, "top": top}

"""The console's page helpers: time and schedule wording, chart geometry, dead-letter
grouping and masking, the Jinja environment, and reading a golden-record override
form. No web framework here: the static export uses them too."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any

import jinja2

from crm2erp.jsonutil import dumps
from crm2erp.store.types import utcnow

HERE = Path(__file__).resolve().parent


def _aware(when: dt.datetime) -> dt.datetime:
    """The store returns aware UTC datetimes; a naive one is taken as UTC."""
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def age(when: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """``when`` as a short "how long ago" ("5 min ago", "3 h ago", "never")."""
    if when is None:
        return "never"
    seconds = max(0, int((_aware(now or utcnow()) - _aware(when)).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


PRESET_PERIODS = {"@hourly": dt.timedelta(hours=1), "@daily": dt.timedelta(days=1),
                  "@midnight": dt.timedelta(days=1), "@weekly": dt.timedelta(weeks=1),
                  "@monthly": dt.timedelta(days=31), "@yearly": dt.timedelta(days=366),
                  "@annually": dt.timedelta(days=366)}


def describe_schedule(schedule) -> str:
    """A flow's ``schedule:`` as text: the preset or cron, or the flows it follows."""
    if schedule is None:
        return "by hand"
    if isinstance(schedule, str):
        return schedule
    return "after " + ", ".join(schedule.assets)


def overdue(schedule, last_ok: dt.datetime | None, now: dt.datetime) -> bool:
    """True when a flow on a preset clock schedule ("@hourly") has not finished a run
    for more than two of its periods (cron and asset schedules are not judged)."""
    period = PRESET_PERIODS.get(schedule) if isinstance(schedule, str) else None
    return (period is not None and last_ok is not None
            and _aware(now) - _aware(last_ok) > 2 * period)


def sparkline(values: list[int], width: int = 120, height: int = 24) -> str:
    """SVG polyline points for ``values`` (oldest first)."""
    if len(values) < 2:
        return ""
    top = max(values) or 1
    step = width / (len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - v / top * (height - 2) - 1:.1f}"
                    for i, v in enumerate(values))


CHART_SERIES = (("loaded", ("created", "updated", "deleted")), ("failed", ("failed",)),
                 ("parked", ("parked",)))


def history_chart(runs, height: int = 160, bar: int = 18, gap: int = 6) -> dict:
    """Stacked bars per run (oldest left): loaded, failed and parked records, scaled to
    the largest run; the geometry for the runs page's SVG."""
    runs = list(reversed(runs[:40]))
    totals = [sum(r.counts[c] for _, cols in CHART_SERIES for c in cols) for r in runs]
    top = max(totals, default=0) or 1
    bars = []
    for i, run in enumerate(runs):
        y, parts = height, []
        for name, cols in CHART_SERIES:
            value = sum(run.counts[c] for c in cols)
            size = value / top * height
            y -= size
            parts.append({"series": name, "value": value, "y": round(y, 1),
                          "height": round(size, 1)})
        bars.append({"run": run.id, "x": i * (bar + gap), "parts": parts})
    return {"bars": bars, "top": top, "height": height, "bar": bar,
            "width": max(len(runs) * (bar + gap), 200), "series": [n for n, _ in CHART_SERIES]}


def group_letters(letters) -> list[tuple[tuple[str, str, str], list]]:
    """Dead letters grouped by (flow, stage, reason): the groups with open letters
    (to fix) before the ones only parked (waiting), each the largest first."""
    groups = defaultdict(list)
    for letter in letters:
        groups[(letter.flow, letter.stage, letter.error)].append(letter)
    return sorted(groups.items(), key=lambda kv: (
        not any(x.status == "open" for x in kv[1]), -len(kv[1]), kv[0]))


def _leaves(a: Any, b: Any):
    """Pairs of values at the same place in two equally shaped dicts/lists."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            yield from _leaves(a[key], b.get(key))
    elif isinstance(a, list) and isinstance(b, list):
        for x, y in zip(a, b, strict=False):
            yield from _leaves(x, y)
    else:
        yield a, b


def mask_letter(letter, masker):
    """The dead letter with its payload masked, and the masked values hidden in its
    reason too (a reason often quotes the value it refused)."""
    if not isinstance(letter.payload, dict):
        return letter
    payload, error = masker.row(letter.payload), letter.error
    for raw, hidden in _leaves(letter.payload, payload):
        if raw != hidden and isinstance(raw, str) and raw.strip():
            error = error.replace(raw, str(hidden))
    return dataclasses.replace(letter, payload=payload, error=error)


def masked_rules(store, run_id: int, masker) -> list:
    """The run's quality results with their sample values masked."""
    return [dataclasses.replace(r, sample=[masker.value(r.column, v) for v in r.sample])
            for r in store.quality_results(run_id)]


def flow_masker(project, flow_name: str):
    """The flow's PII masker: its ``quality.mask`` under every name the field has
    (``project`` None: nothing masked, the steward may see it all)."""
    from crm2erp.quality.report.mask import Masker

    if project is None:
        return Masker(set())
    spec = project.flows.get(flow_name)
    mappings = ([project.mapping(spec.source_mapping_path),
                 project.mapping(spec.target_mapping_path)] if spec is not None else [])
    return Masker.for_flow(spec, mappings)


class _CompiledTemplates(jinja2.BytecodeCache):
    """The templates compiled once a process, for every environment made here (each
    export and each run report makes one): Jinja checks the source's checksum, so
    an edited template is compiled again."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()


def environment(csrf_token: str, *, static: bool = False) -> jinja2.Environment:
    """The console's templates: autoescaped, strict about missing names.

    ``static``: for the files ``crm2erp serve --export`` writes (the stylesheet
    inline, no script, links between the files instead of to the server)."""
    from urllib.parse import quote

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             bytecode_cache=_COMPILED)
    from crm2erp.console.business import money

    env.globals.update(csrf_token=csrf_token, age=age, dumps=dumps, money=money,
                       static=static,
                       css=(HERE / "static" / "console.css").read_text("utf-8") if static else "")
    if static:
        env.globals.update(run_url=lambda run_id: f"run-{int(run_id)}.html",
                           flow_url=lambda flow: f"flow-{quote(flow, safe='')}.html")
    else:
        env.globals.update(run_url=lambda run_id: f"/runs/{int(run_id)}",
                           flow_url=lambda flow: f"/flows/{quote(flow, safe='')}/runs")
    env.filters["utc"] = lambda when: (_aware(when).astimezone(dt.UTC)
                                       .strftime("%Y-%m-%d %H:%M:%S UTC") if when else "")
    return env


def golden_overrides(pair, form) -> dict[str, Any]:
    """The golden-record fields the steward changed on the pair page (``golden.PATH``
    inputs): path -> the typed value, an emptied field -> None."""
    from crm2erp.quality.dedupe.review import golden_values

    golden, changed = golden_values(pair), {}
    for name, given in form.multi_items():
        path = name.removeprefix("golden.")
        if path == name or path not in golden or not isinstance(given, str):
            continue
        shown = golden[path]
        if given.strip() != ("" if shown is None else str(shown)):
            changed[path] = given.strip() or None
    return changed

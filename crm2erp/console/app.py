"""The console's Starlette app: server-rendered pages over one state store.

Every page reads the store; every action (retry, discard, decide) calls the
same functions the CLI commands call. Text from the systems is escaped by
Jinja's autoescape; every POST carries the page's CSRF token.
"""

from __future__ import annotations

__all__ = ["create_app", "listen"]

import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import hmac
import secrets
from collections import defaultdict
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from crm2erp.errors import ConfigError, Crm2ErpError
from crm2erp.jsonutil import dumps
from crm2erp.store import StateStore
from crm2erp.store.types import utcnow

HERE = Path(__file__).resolve().parent
STATUSES = ("actionable", "open", "parked", "resolved", "discarded", "all")
SUCCESSFUL = ("succeeded", "partial")   # the run finished; partial: with dead letters
RECONCILE_LISTS = ("missing_in_target", "only_in_target", "orphaned", "unmapped")


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


def environment(csrf_token: str) -> jinja2.Environment:
    """The console's templates: autoescaped, strict about missing names."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.globals.update(csrf_token=csrf_token, age=age, dumps=dumps)
    env.filters["utc"] = lambda when: (_aware(when).astimezone(dt.UTC)
                                       .strftime("%Y-%m-%d %H:%M:%S UTC") if when else "")
    return env


SECURITY_HEADERS = [
    # no script runs at all, nothing loads from elsewhere, no framing (clickjacking)
    (b"content-security-policy", b"default-src 'none'; style-src 'self'; img-src 'self'; "
                                 b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


class BasicAuth:
    """HTTP basic auth on every request: any user name, the configured password."""

    def __init__(self, app, password: str):
        self.app, self.password = app, password.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not self._ok(dict(scope["headers"])):
            response = PlainTextResponse("a password is required", status_code=401,
                                         headers={"WWW-Authenticate":
                                                  'Basic realm="crm2erp console"'})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _ok(self, headers: dict[bytes, bytes]) -> bool:
        kind, _, value = headers.get(b"authorization", b"").partition(b" ")
        if kind.lower() != b"basic":
            return False
        try:
            _user, _, given = base64.b64decode(value, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self.password)


def _who(request: Request) -> str:
    """Who acts: the basic-auth user name, else the OS user (as the CLI records)."""
    from crm2erp.cli.dedupe import _who as os_user

    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            user = base64.b64decode(header[6:]).decode().partition(":")[0]
        except (binascii.Error, ValueError):
            user = ""
        if user:
            return user
    return os_user(None)


def create_app(state_url: str | None, project_dir: Path, *, password: str | None = None,
               allowed_hosts: list[str] | None = None, unmask: bool = False) -> Starlette:
    """The console over the store at ``state_url`` for the project in ``project_dir``
    (loaded again for every action, so a fixed mapping is used at once).

    ``password``: HTTP basic auth on every request. ``allowed_hosts``: the only
    ``Host`` headers answered (on loopback: the loopback names, so a web page
    cannot reach the console through DNS rebinding). Values of the fields a flow's
    ``quality.mask`` names are masked as in the report, unless ``unmask``."""
    store = StateStore.open(state_url)
    project_dir = Path(project_dir)
    csrf_token = secrets.token_urlsafe(32)
    env = environment(csrf_token)

    def page(name: str, status_code: int = 200, **context):
        from starlette.responses import HTMLResponse

        return HTMLResponse(env.get_template(name).render(**context),
                            status_code=status_code)

    def load_project():
        from crm2erp.mapping import load_project as load

        return load(project_dir)

    def flow_specs() -> dict:
        """Flow name -> its spec (None for a flow known only from its runs)."""
        specs = dict.fromkeys({r.flow for r in store.list_runs(None, limit=1000)})
        if project_dir.is_dir():
            try:
                specs.update(load_project().flows)
            except Crm2ErpError:   # a broken project still shows its runs
                pass
        return dict(sorted(specs.items()))

    def masker(flow_name: str, project=None):
        """The flow's PII masker (its ``quality.mask`` under every name the field
        has); when the project does not load, the page is refused, not unmasked."""
        from crm2erp.quality.report.mask import Masker

        if unmask:
            return Masker(set())
        project = project or load_project()
        spec = project.flows.get(flow_name)
        mappings = ([project.mapping(spec.source_mapping_path),
                     project.mapping(spec.target_mapping_path)] if spec is not None else [])
        return Masker.for_flow(spec, mappings)

    def found(get, item_id: int):
        """``get(item_id)`` from the store; an id it does not have is a 404."""
        try:
            return get(item_id)
        except ConfigError as exc:
            raise HTTPException(404, str(exc)) from None

    async def checked_form(request: Request):
        form = await request.form()
        given = form.get("csrf", "")
        if not isinstance(given, str) or not hmac.compare_digest(given, csrf_token):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page")
        return form

    def selected_letters(form):
        try:
            ids = [int(x) for x in form.getlist("ids")]
        except ValueError:
            raise HTTPException(400, "dead letter ids must be numbers") from None
        if not ids:
            raise HTTPException(400, "no dead letters selected")
        return [found(store.get_dead_letter, i) for i in ids]

    # -- pages -----------------------------------------------------------------
    def overview(request: Request):
        now, flows = utcnow(), []
        for name, spec in flow_specs().items():
            runs = store.list_runs(name, limit=20)
            last = runs[0] if runs else None
            good = next((r for r in runs if r.status in SUCCESSFUL), None)
            good_at = good and (good.finished_at or good.started_at)
            schedule = spec.schedule if spec is not None else None
            status = store.run_status(last) if last else "never run"
            row = {"name": name, "last": last, "status": status,
                   "schedule": describe_schedule(schedule) if spec is not None else "",
                   "open": store.count_dead_letters(name, "open"),
                   "parked": store.count_dead_letters(name, "parked"),
                   "since_ok": age(good_at, now) if good else "never",
                   "spark": sparkline([r.read for r in reversed(runs)])}
            if status in ("failed", "stopped", "crashed"):
                row["rank"], row["why"] = 0, f"last run {status}"
            elif row["open"]:
                row["rank"], row["why"] = 1, f"{row['open']} dead letter(s) to fix"
            elif overdue(schedule, good_at, now):
                row["rank"], row["why"] = 2, (f"overdue: runs {schedule}, last finished "
                                              f"{row['since_ok']}")
            elif row["parked"]:
                row["rank"], row["why"] = 3, f"{row['parked']} parked record(s) waiting"
            elif last is None:
                row["rank"], row["why"] = 4, "never run"
            else:
                row["rank"], row["why"] = 5, ""
            flows.append(row)
        flows.sort(key=lambda r: (r["rank"], r["name"]))
        return page("overview.html", flows=flows,
                    attention=[r for r in flows if r["rank"] < 5],
                    pending_pairs=len(store.dedupe_pairs(status="pending", limit=100_000)))

    def dead_letters(request: Request):
        q = request.query_params
        flow, stage = q.get("flow") or None, q.get("stage") or None
        words = (q.get("reason") or "").strip()
        status = q.get("status") or "actionable"
        if status not in STATUSES:
            raise HTTPException(400, f"status {status!r}: expected one of "
                                     f"{', '.join(STATUSES)}")
        wanted = {"actionable": ("open", "parked"), "all": None}.get(status, status)
        stored = store.dead_letters(flow=flow, status=wanted, limit=100_000)
        project = None if unmask or not stored else load_project()
        maskers = {name: masker(name, project) for name in {x.flow for x in stored}}
        letters = [x for x in (mask_letter(x, maskers[x.flow]) for x in stored)
                   if (stage is None or x.stage == stage)
                   and words.casefold() in x.error.casefold()]
        grouped = group_letters(letters)
        everything = store.dead_letters(status=wanted, limit=100_000)
        return page("dead_letters.html", groups=grouped, total=len(letters), flow=flow,
                    stage=stage, reason=words, status=status, statuses=STATUSES,
                    flows=sorted({x.flow for x in everything}),
                    stages=sorted({x.stage for x in everything}))

    def dead_letter(request: Request):
        stored = found(store.get_dead_letter, request.path_params["id"])
        letter = mask_letter(stored, masker(stored.flow))
        return page("dead_letter.html", letter=letter, payload=dumps(letter.payload, indent=2))

    async def retry(request: Request):
        from crm2erp.engine import retry_dead_letters

        letters = selected_letters(await checked_form(request))
        _retried, results, still = await run_in_threadpool(
            lambda: retry_dead_letters(load_project(), store, letters))
        after = [store.get_dead_letter(x.id) for x in letters]
        return page("outcome.html", action="retry", results=results, still_open=len(still),
                    letters=after, count=len(letters))

    async def discard(request: Request):
        letters = selected_letters(await checked_form(request))
        count = store.set_dead_letter_status([x.id for x in letters], "discarded")
        after = [store.get_dead_letter(x.id) for x in letters]
        return page("outcome.html", action="discard", results=[], still_open=None,
                    letters=after, count=count)

    def runs(request: Request):
        flow = request.path_params["flow"]
        history = store.list_runs(flow, limit=200)
        return page("runs.html", flow=flow, runs=history, chart=history_chart(history),
                    statuses={r.id: store.run_status(r) for r in history})

    def run(request: Request):
        record = found(store.get_run, request.path_params["id"])
        mask = masker(record.flow)
        rules = [dataclasses.replace(r, sample=[mask.value(r.column, v) for v in r.sample])
                 for r in store.quality_results(record.id)]
        return page("run.html", run=record, status=store.run_status(record), rules=rules)

    def reconciliation(request: Request):
        latest = []
        for name in flow_specs():
            found = store.latest_reconciliation(name)
            if found is not None:
                mask = masker(name)
                diffs = [{**d, "source": mask.value(d.get("field"), d.get("source")),
                          "target": mask.value(d.get("field"), d.get("target"))}
                         for d in found.details.get("different", [])]
                latest.append(dataclasses.replace(found,
                                                  details={**found.details, "different": diffs}))
        from crm2erp.store.quality import RECONCILE_COUNTS

        return page("reconciliation.html", results=latest, kinds=RECONCILE_LISTS,
                    counts=RECONCILE_COUNTS)

    def pairs(request: Request):
        status = request.query_params.get("status") or "pending"
        found = store.dedupe_pairs(status=None if status == "all" else status, limit=1000)
        return page("pairs.html", pairs=found, status=status)

    def pair_page(found, **extra):
        from crm2erp.cli.dedupe import pair_rows, pair_side

        mask = masker(found.flow)
        rows = [{**r, "left": mask.value(r["name"], r["left"]),
                 "right": mask.value(r["name"], r["right"])} for r in pair_rows(found)]
        return page("pair.html", pair=found, rows=rows,
                    sides=(pair_side(found, "left"), pair_side(found, "right")), **extra)

    def pair(request: Request):
        return pair_page(found(store.get_dedupe_pair, request.path_params["id"]),
                         decided=False)

    async def decide(request: Request):
        form = await checked_form(request)
        decision = {"accept": "accepted", "reject": "rejected"}.get(form.get("decision"))
        if decision is None:
            raise HTTPException(400, "decision must be accept or reject")
        note = form.get("note") or None
        decided = store.decide_dedupe_pair(request.path_params["id"], decision,
                                           _who(request), note)
        return pair_page(decided, decided=True)

    async def error(request: Request, exc: Exception):
        """A refused request or a crm2erp error (a project that does not load, an
        action the store refused) as a page with its message, never a traceback."""
        if isinstance(exc, HTTPException):
            code, message = exc.status_code, exc.detail
        else:
            code, message = 400, str(exc)
        return page("error.html", status_code=code, code=code, message=message)

    routes = [
        Route("/", overview),
        Route("/dead-letters", dead_letters),
        Route("/dead-letters/{id:int}", dead_letter),
        Route("/dead-letters/retry", retry, methods=["POST"]),
        Route("/dead-letters/discard", discard, methods=["POST"]),
        Route("/flows/{flow}/runs", runs),
        Route("/runs/{id:int}", run),
        Route("/reconciliation", reconciliation),
        Route("/duplicates", pairs),
        Route("/duplicates/{id:int}", pair),
        Route("/duplicates/{id:int}/decide", decide, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    from starlette.middleware import Middleware

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        store.close()

    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts,
                                     www_redirect=False))
    if password:
        middleware.append(Middleware(BasicAuth, password=password))
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={HTTPException: error, Crm2ErpError: error},
                    lifespan=lifespan)
    app.state.store, app.state.csrf_token = store, csrf_token
    return app


def listen(app: Starlette, host: str, port: int) -> None:
    """Serve ``app`` on ``host:port`` until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning")

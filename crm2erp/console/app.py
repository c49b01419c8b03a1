"""The console's Starlette app: server-rendered pages over one state store.

Every page reads the store; every action (retry, discard, decide) calls the
same functions the CLI commands call. Text from the systems is escaped by
Jinja's autoescape; every POST carries the page's CSRF token.
"""

from __future__ import annotations

__all__ = ["create_app", "listen"]

import contextlib
import dataclasses
import datetime as dt
import hmac
import secrets
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from crm2erp.console.security import BasicAuth, SecurityHeaders, _who
from crm2erp.console.views import (
    HERE,
    age,
    describe_schedule,
    environment,
    flow_masker,
    golden_overrides,
    group_letters,
    history_chart,
    mask_letter,
    masked_rules,
    overdue,
    sparkline,
)
from crm2erp.errors import ConfigError, Crm2ErpError
from crm2erp.jsonutil import dumps
from crm2erp.store import StateStore
from crm2erp.store.types import utcnow

STATUSES = ("actionable", "open", "parked", "resolved", "discarded", "all")
SUCCESSFUL = ("succeeded", "partial")   # the run finished; partial: with dead letters
RECONCILE_LISTS = ("missing_in_target", "only_in_target", "orphaned", "unmapped")


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
        """The flow's PII masker; when the project does not load, the page is
        refused, not unmasked."""
        return flow_masker(None if unmask else (project or load_project()), flow_name)

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
        rules = masked_rules(store, record.id, masker(record.flow))
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

    async def resync(request: Request):
        from crm2erp.engine.resync import resync_record

        form = await checked_form(request)
        flow, key = form.get("flow") or "", form.get("source_key") or ""
        if not flow or not key:
            raise HTTPException(400, "re-sync needs a flow and a source key")
        result = await run_in_threadpool(
            lambda: resync_record(load_project(), store, flow, key))
        held = [x for x in store.dead_letters(flow=flow, status=("open", "parked"),
                                               limit=100_000) if x.source_key == key]
        mask = masker(flow)
        return page("resync.html", flow=flow, source_key=key, result=result,
                    letters=[mask_letter(x, mask) for x in held])

    def pairs(request: Request):
        status = request.query_params.get("status") or "pending"
        found = store.dedupe_pairs(status=None if status == "all" else status, limit=1000)
        return page("pairs.html", pairs=found, status=status)

    def pair_page(found, merged=None, **extra):
        from crm2erp.quality.dedupe.review import golden_values, pair_rows, pair_side

        mask = masker(found.flow)
        golden = golden_values(found)
        rows = [{**r, "left": mask.value(r["name"], r["left"]),
                 "right": mask.value(r["name"], r["right"]),
                 "golden": mask.value(r["name"], golden.get(r["field"])),
                 "editable": (found.status == "pending" and r["field"] in golden
                              and not isinstance(golden[r["field"]], dict | list))}
                for r in pair_rows(found)]
        waiting = [p.id for p in store.dedupe_pairs(status="pending", limit=100_000)
                   if p.id != found.id]
        later = [i for i in waiting if i > found.id] or waiting
        return page("pair.html", pair=found, rows=rows, has_golden=bool(golden),
                    overrides=found.details.get("overrides") or {},
                    next_pair=later[0] if later else None,
                    sides=(pair_side(found, "left"), pair_side(found, "right")),
                    merged=merged, **extra)

    def pair(request: Request):
        return pair_page(found(store.get_dedupe_pair, request.path_params["id"]),
                         decided=False)

    async def decide(request: Request):
        form = await checked_form(request)
        decision = {"accept": "accepted", "reject": "rejected"}.get(form.get("decision"))
        if decision is None:
            raise HTTPException(400, "decision must be accept or reject")
        note = form.get("note") or None
        pair_id = request.path_params["id"]
        overrides = (golden_overrides(found(store.get_dedupe_pair, pair_id), form)
                     if decision == "accepted" else None)
        decided = store.decide_dedupe_pair(pair_id, decision, _who(request), note,
                                           overrides=overrides)
        from crm2erp.quality.dedupe.scan import apply_accepted, is_scanned

        merged = None   # a scanned pair: both records are in the target, merge now
        if decision == "accepted" and is_scanned(decided):
            merged = await run_in_threadpool(
                lambda: apply_accepted(load_project(), store, decided))
            decided = store.get_dedupe_pair(pair_id)
        return pair_page(decided, decided=True, merged=merged)

    def as_of(request: Request) -> dt.date:
        given = request.query_params.get("as_of")
        try:
            return dt.date.fromisoformat(given) if given else utcnow().date()
        except ValueError:
            raise HTTPException(400, f"as_of {given!r}: expected a date (YYYY-MM-DD)") from None

    def business_masks():
        """Entity -> its flows' PII mask; a project that does not load refuses the page."""
        from crm2erp.console.business import entity_masks

        return entity_masks(None if unmask else load_project())

    def business(request: Request):
        from crm2erp.console.business import business_view

        return page("business.html", view=business_view(store, as_of(request),
                                                        business_masks()))

    def business_records(request: Request):
        from crm2erp.console.business import business_view, record_rows

        masks = business_masks()
        view = business_view(store, as_of(request), masks)
        figure = view.figures().get(request.path_params["key"])
        if figure is None:
            raise HTTPException(404, f"no figure {request.path_params['key']!r} in the "
                                     "business view (it may have no records now)")
        return page("business_records.html", figure=figure, as_of=view.as_of,
                    rows=record_rows(store, figure, view.names, masks))

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
        Route("/reconciliation/resync", resync, methods=["POST"]),
        Route("/duplicates", pairs),
        Route("/duplicates/{id:int}", pair),
        Route("/duplicates/{id:int}/decide", decide, methods=["POST"]),
        Route("/business", business),
        Route("/business/{key}", business_records),
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

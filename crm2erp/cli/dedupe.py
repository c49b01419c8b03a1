"""``crm2erp dedupe``: the steward's review queue of possible duplicates.

A pair between the matching thresholds waits here (its newer record parked)
until someone decides: *accept* (the same entity: merge) or *reject* (two
entities: keep apart). The decision is stored with who and when; the next run
of the flow retries the parked record and honours it, and so does every later
run, without asking again.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace

import click
import typer
from rich.table import Table
from rich.text import Text

from crm2erp.cli.context import settings
from crm2erp.cli.output import console, json_option, literal, print_json
from crm2erp.errors import ConfigError
from crm2erp.jsonutil import dumps
from crm2erp.quality.dedupe.review import golden_values, pair_rows, pair_side
from crm2erp.quality.dedupe.review import who as _who

app = typer.Typer(no_args_is_help=True,
                  help="Possible duplicates: review, accept or reject merges.")
STATUSES = ("pending", "accepted", "rejected", "merged", "all")
DECISIONS = {"accept": "accepted", "accepted": "accepted", "reject": "rejected",
             "rejected": "rejected"}


def _text(value) -> Text:
    if value is None:
        return Text("-", style="dim")
    return literal(value if isinstance(value, str) else dumps(value))


def pair_table(pair) -> Table:
    """Both records side by side: compared fields with level and score, then other fields."""
    table = Table(title=literal(f"pair #{pair.id} ({pair.flow}): "
                                f"p={pair.match_probability:.3f}, weight "
                                f"{pair.match_weight:.2f}, {pair.reason}, {pair.status}"),
                  title_justify="left")
    table.add_column("field")
    table.add_column(literal(pair_side(pair, "left")), overflow="fold")
    table.add_column(literal(pair_side(pair, "right")), overflow="fold")
    table.add_column("level")
    table.add_column("score", justify="right")
    preview = pair.details.get("golden")
    if preview is not None:
        table.add_column("if accepted", overflow="fold")
    golden = golden_values(pair)

    def cells(name: str) -> list:
        return [_text(golden.get(name))] if preview is not None else []

    for row in pair_rows(pair):
        if row["compared"]:
            score = "" if row["score"] is None else f"{row['score']:.2f}"
            table.add_row(literal(row["name"]), _text(row["left"]), _text(row["right"]),
                          literal(row["level"]), f"{score} ({row['weight']:+.1f})",
                          *cells(row["field"]))
        else:
            table.add_row(literal(row["name"], "dim"), _text(row["left"]),
                          _text(row["right"]), "", "", *cells(row["field"]))
    conflicts = (preview or {}).get("conflicts") or {}
    if conflicts:
        table.caption = literal("identifiers differ: " + "; ".join(
            f"{name} {' / '.join(map(str, values))} (accepting keeps {golden.get(name)!r})"
            for name, values in conflicts.items()), "yellow")
        table.caption_justify = "left"
    return table


@app.command("list")
def list_(ctx: typer.Context,
          flow: str = typer.Option(None, "--flow", help="Only this flow."),
          status: str = typer.Option("pending", "--status", help="/".join(STATUSES)),
          limit: int = typer.Option(100, "--limit"),
          as_json: bool = json_option()) -> None:
    """List duplicate pairs (by default the ones waiting for review)."""
    if status not in STATUSES:
        raise ConfigError(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    store = settings(ctx).open_store(create=False)
    try:
        pairs = store.dedupe_pairs(flow=flow, status=None if status == "all" else status,
                                   limit=limit)
    finally:
        store.close()
    if as_json:
        from dataclasses import asdict

        print_json({"pairs": [asdict(p) for p in pairs]})
        return
    if not pairs:
        console.print(f"no {'' if status == 'all' else status + ' '}pairs")
        return
    table = Table(title=f"{len(pairs)} pair(s)", title_justify="left")
    for column in ("id", "flow", "status", "p", "left", "right", "reason", "decided by"):
        table.add_column(column, overflow="fold")
    for p in pairs:
        table.add_row(str(p.id), literal(p.flow), literal(p.status),
                      f"{p.match_probability:.3f}", literal(p.left_label or p.left_id),
                      literal(p.right_label or p.right_id), literal(p.reason),
                      literal(p.decided_by or ""))
    console.print(table)


@app.command("show")
def show(ctx: typer.Context, pair_id: int = typer.Argument(..., metavar="PAIR_ID")) -> None:
    """Show one pair with both records side by side."""
    store = settings(ctx).open_store(create=False)
    try:
        console.print(pair_table(store.get_dedupe_pair(pair_id)))
    finally:
        store.close()


@app.command("decide")
def decide(ctx: typer.Context,
           pair_id: int = typer.Argument(..., metavar="PAIR_ID"),
           decision: str = typer.Argument(..., metavar="accept|reject"),
           by: str = typer.Option(None, "--by", help="Who decides (default: the OS user)."),
           note: str = typer.Option(None, "--note", help="Why, for the record.")) -> None:
    """Decide one pair: accept (same entity, merge) or reject (keep apart)."""
    if decision not in DECISIONS:
        raise ConfigError(f"decision {decision!r}: expected accept or reject")
    from crm2erp.quality.dedupe.scan import is_scanned

    cfg = settings(ctx)
    store = cfg.open_store(create=False)
    try:
        applied = store.get_dedupe_pair(pair_id).details.get("applied")
        if applied:
            raise ConfigError(f"pair #{pair_id} was merged in the target already "
                              f"({applied['survivor']} kept, record "
                              f"{applied['archived_target_id']} "
                              f"{applied.get('how', 'archived')}): a decision "
                              "cannot undo it")
        pair = store.decide_dedupe_pair(pair_id, DECISIONS[decision], _who(by), note)
        if pair.status == "accepted" and is_scanned(pair):
            console.print(literal(f"pair #{pair.id} accepted by {pair.decided_by}"))
            _apply_scanned(cfg, store, [pair])
            return
    finally:
        store.close()
    if is_scanned(pair):
        console.print(literal(f"pair #{pair.id} {pair.status} by {pair.decided_by}: both "
                              "records stay as they are"))
        return
    console.print(literal(f"pair #{pair.id} {pair.status} by {pair.decided_by}; the next "
                          f"run of flow {pair.flow} applies it"))


def _apply_scanned(cfg, store, pairs) -> None:
    """Merge accepted pairs a scan found (both records are in the target already) now."""
    from crm2erp.quality.dedupe.scan import apply_accepted

    project = cfg.load_project()
    for pair in pairs:
        done = apply_accepted(project, store, pair)
        console.print(literal(
            f"pair #{pair.id} merged in flow {pair.flow}: {done.survivor} kept as "
            f"{done.survivor_target_id} with the golden record, record "
            f"{done.archived_target_id} {_folded(done.how)}, {done.repointed} source id(s) "
            "repointed"))


def _folded(how: str) -> str:
    """What became of the loser's target record."""
    return ("merged into it by the target's own merge (its documents moved)"
            if how == "merged" else "archived")


@app.command("review")
def review(ctx: typer.Context,
           flow: str = typer.Option(None, "--flow", help="Only this flow."),
           by: str = typer.Option(None, "--by", help="Who decides (default: the OS user).")
           ) -> None:
    """Go through the pending pairs one by one: accept, reject or skip each
    (o: set a field of the golden record first, as the console does)."""
    from crm2erp.quality.dedupe.scan import is_scanned

    store = settings(ctx).open_store(create=False)
    who, done = _who(by), {"accepted": 0, "rejected": 0, "skipped": 0}
    try:
        pairs = store.dedupe_pairs(flow=flow, status="pending", limit=1_000_000)
        if not pairs:
            console.print("no pairs wait for review")
            return
        pairs.sort(key=lambda p: -p.match_probability)
        scanned = []   # accepted pairs of records already synced: merged at the end
        for number, pair in enumerate(pairs, 1):
            console.print(f"\n[b]{number}/{len(pairs)}[/]")
            answer, overrides = _ask(pair)
            if answer == "q":
                break
            if answer in ("a", "r"):
                decision = "accepted" if answer == "a" else "rejected"
                decided = store.decide_dedupe_pair(pair.id, decision, who,
                                                   overrides=overrides)
                done[decision] += 1
                if decision == "accepted" and is_scanned(decided):
                    scanned.append(decided)
            else:
                done["skipped"] += 1
        if scanned:
            _apply_scanned(settings(ctx), store, scanned)
    finally:
        store.close()
    console.print(f"{done['accepted']} accepted, {done['rejected']} rejected, "
                  f"{done['skipped']} skipped; the next run of each flow applies the decisions")


def _ask(pair) -> tuple[str, dict]:
    """Show the pair and ask until a/r/s/q; ``o`` sets a field of the golden record
    (as the console's golden column does) and shows the pair again."""
    overrides: dict = {}
    editable = sorted(k for k, v in golden_values(pair).items()
                      if not isinstance(v, dict | list))
    while True:
        shown = replace(pair, details={**pair.details, "overrides": overrides})
        console.print(pair_table(shown))
        answer = click.prompt("same entity? [a]ccept / [r]eject / [s]kip / [q]uit" +
                              (" / [o]verride a golden field" if editable else ""),
                              default="s", show_choices=False,
                              type=click.Choice(["a", "r", "s", "q", "o"],
                                                case_sensitive=False)).lower()
        if answer != "o":
            return answer, overrides
        if not editable:
            console.print("this pair has no golden-record preview to override")
            continue
        name = click.prompt("field", type=click.Choice(editable), show_choices=True)
        overrides[name] = click.prompt("value (empty: none)", default="",
                                       show_default=False).strip() or None


@contextmanager
def _dedupe_stage(ctx: typer.Context, flow: str):
    """FLOW's runner and dedupe stage, with the project's state store, for the with-block."""
    from crm2erp.engine import Engine

    cfg = settings(ctx)
    project = cfg.load_project()
    store = cfg.open_store()
    try:
        with Engine(project, store) as engine:
            runner = engine.runner(flow)
            stage = next((s for s in runner.stages if s.name == "dedupe"), None)
            if stage is None:
                raise ConfigError(f"flow {flow!r} has no dedupe section: nothing to train "
                                  "or explain")
            yield store, runner, stage
    finally:
        store.close()


@app.command("scan")
def scan(ctx: typer.Context, flow: str = typer.Argument(..., help="Flow name."),
         as_json: bool = json_option()) -> None:
    """Find duplicates among FLOW's records synced before matching was switched on.

    Matches the records already in FLOW's target (linked in the cross-reference)
    with its matching configuration or trained model and queues every candidate
    pair for review (dedupe review, decide, the console); it never merges by
    itself. A pair queued or decided before is not queued again. Accepting a
    scanned pair merges it in the target at once: the older record keeps its
    target record with the golden record, the other's is archived.
    """
    from crm2erp.quality.dedupe.scan import scan as find

    with _dedupe_stage(ctx, flow) as (_, runner, stage):
        found = find(runner, stage)
    if as_json:
        print_json({"flow": flow, "records": found.records, "new": found.new,
                    "pairs": [{"id": p.id, "new": not before, "status": p.status,
                               "match_probability": p.match_probability,
                               "match_weight": p.match_weight, "reason": p.reason,
                               "left_id": p.left_id, "right_id": p.right_id,
                               "left_label": p.left_label, "right_label": p.right_label}
                              for p, before in found.pairs]})
        return
    if not found.pairs:
        console.print(literal(f"flow {flow}: no possible duplicates among {found.records} "
                              "synced records"))
        return
    table = Table(title=literal(f"flow {flow}: {len(found.pairs)} possible duplicate "
                                f"pair(s) among {found.records} synced records, "
                                f"{found.new} new"), title_justify="left")
    for column in ("pair", "p", "left", "right", "reason", "queued"):
        table.add_column(column, overflow="fold", justify="right" if column == "p" else "left")
    for p, before in found.pairs:
        table.add_row(f"#{p.id}", f"{p.match_probability:.3f}",
                      literal(p.left_label or p.left_id), literal(p.right_label or p.right_id),
                      literal(p.reason), "before" if before else "new")
    console.print(table)
    console.print(literal("decide with crm2erp dedupe review, dedupe decide PAIR "
                          "accept|reject, or the console; accepting merges in the target"))


def _bits(value: float) -> str:
    return f"{value:+.2f}"


@app.command("train")
def train(ctx: typer.Context, flow: str = typer.Argument(..., help="Flow name.")) -> None:
    """Fit FLOW's matching model on all its records and store it; runs then use it.

    u comes from random pairs, m and lambda from the guarded EM over every
    record: the source (through the flow's inbound mapping), the records
    already synced and, with dedupe.target, the target's own. An implausible
    fit is refused (exit 2) and the previous model stays in use.
    """
    from crm2erp.quality.dedupe.fellegi_sunter import ImplausibleFit
    from crm2erp.quality.dedupe.model import level_rows, to_payload
    from crm2erp.quality.dedupe.model import train as fit
    from crm2erp.store.dedupe import DedupeModel

    with _dedupe_stage(ctx, flow) as (store, runner, stage):
        records, unusable = stage.training_records(runner)
        try:
            params, warnings, n_pairs = fit(stage.config, [r.data for r in records.values()])
        except ImplausibleFit as exc:
            previous = store.dedupe_model(flow)
            kept = (f"the previous model #{previous.id} (trained "
                    f"{previous.trained_at:%Y-%m-%d %H:%M} UTC) stays in use" if previous
                    else "no model is stored")
            raise ConfigError(f"flow {flow!r}: training refused: {exc}; {kept}") from None
        saved = store.save_dedupe_model(DedupeModel(
            flow, stage.entity, len(records), n_pairs,
            to_payload(stage.config, params, warnings)))
    table = Table(title=literal(
        f"model #{saved.id} of flow {flow}: trained {saved.trained_at:%Y-%m-%d %H:%M} UTC on "
        f"{saved.n_records} records, {saved.n_pairs} candidate pairs, "
        f"lambda={params.lambda_:.3g} (prior {_bits(_prior(params.lambda_))} bits)"),
        title_justify="left")
    for column in ("comparison", "level", "m", "u", "weight (bits)", "warning"):
        table.add_column(column, justify="right" if column in ("m", "u", "weight (bits)")
                         else "left", overflow="fold")
    for row in level_rows(stage.config, params):
        table.add_row(literal(row.comparison), literal(row.level), f"{row.m:.4g}",
                      f"{row.u:.4g}", _bits(row.weight),
                      literal(row.warning, "yellow") if row.warning else "")
    console.print(table)
    for warning in warnings:
        console.print(literal(f"warning: {warning}", "yellow"))
    if unusable:
        console.print(literal(f"{unusable} source row(s) could not be mapped or validated "
                              f"and took no part (crm2erp quality run {flow} names them)",
                              "yellow"))
    console.print(literal(f"stored; the next runs of {flow} use model #{saved.id}"))


def _prior(lambda_: float) -> float:
    import math

    return math.log2(lambda_ / (1 - lambda_))


@app.command("explain")
def explain(ctx: typer.Context, flow: str = typer.Argument(..., help="Flow name."),
            a: str = typer.Argument(..., metavar="A", help="Record id: source key or "
                                    "canonical id."),
            b: str = typer.Argument(..., metavar="B", help="The other record.")) -> None:
    """Show the per-field comparison level and weight behind one pair's score."""
    with _dedupe_stage(ctx, flow) as (_, runner, stage):
        matcher = stage.matcher
        if matcher.params is None:
            raise ConfigError(f"flow {flow!r} has no trained matching model and its "
                              f"configuration gives no m/u/lambda; run crm2erp dedupe "
                              f"train {flow} first")
        records, _ = stage.training_records(runner)
    ids = list(records)
    index = {rid: i for i, rid in enumerate(ids)}
    for i, record in enumerate(records.values()):
        if record.source_key is not None:
            index.setdefault(str(record.source_key), i)
    missing = [x for x in (a, b) if x not in index]
    if missing:
        raise ConfigError(f"flow {flow!r}: no record {', '.join(map(repr, missing))} in its "
                          "source, the records already synced or its target (give a source "
                          "key or a canonical id)")
    data = [r.data for r in records.values()]
    result = matcher.explain(data, index[a], index[b])
    pair = result.pairs(None)[0]
    params = matcher.params
    tables = params.level_weights()
    origin = (f"model #{stage.model_info.id} trained "
              f"{stage.model_info.trained_at:%Y-%m-%d %H:%M} UTC"
              if stage.model_info is not None else "the configuration's fixed m/u/lambda")
    table = Table(title=literal(f"{a} {records[ids[index[a]]].label!r} vs {b} "
                                f"{records[ids[index[b]]].label!r} ({origin})"),
                  title_justify="left")
    for column in ("comparison", "A", "B", "level", "m", "u", "bits", "tf bits"):
        table.add_column(column, overflow="fold",
                         justify="right" if column in ("m", "u", "bits", "tf bits") else "left")
    for k, comp in enumerate(stage.config.comparisons):
        field = pair.fields[comp.label]
        level = field.level
        tf = 0.0 if result.tf_adjustment is None else float(result.tf_adjustment[0, k])
        m = "" if level < 0 else f"{params.m[k][level]:.4g}"
        u = "" if level < 0 else f"{params.u[k][level]:.4g}"
        table.add_row(literal(comp.label), _text(field.left), _text(field.right),
                      literal(field.label), m, u, _bits(float(tables[k][level])),
                      _bits(tf) if tf else "")
    console.print(table)
    console.print(literal(f"prior log2(lambda/(1-lambda)) {_bits(_prior(params.lambda_))} bits; "
                          f"match weight {_bits(pair.match_weight)} bits, p="
                          f"{pair.match_probability:.4f}: {pair.decision} (merge at p >= "
                          f"{stage.config.thresholds.upper:g}, review at p >= "
                          f"{stage.config.thresholds.lower:g})"))

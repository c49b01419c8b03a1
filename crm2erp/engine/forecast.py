"""The forecast runner: open opportunities become demand per product and month.

A flow with a ``forecast:`` section does not copy records one to one. Each
run it

1. reads the **whole** source, batch by batch (a forecast is a sum over every
   open deal, so there is no watermark): each row is mapped inbound to the
   canonical Opportunity and validated; a row that fails goes to the dead
   letters as in any flow, and the rows that pass resolve their old letters;
2. adds ``line.quantity * probability / 100`` (Decimal arithmetic, exact) to
   the bucket of (line product, month of the close date), for deals in the
   chosen stages whose month is in the horizon. Only the buckets stay in
   memory: at most products x ``horizon_months`` sums, whatever the number
   of deals;
3. emits one canonical ForecastLine per bucket, its id derived from flow,
   product and month, through the normal path: outbound mapping, skip when
   the payload hash equals the last one written, upsert, xref and dead
   letters in one state-store transaction per batch. Buckets an earlier run
   wrote that are empty now (the deal was lost, moved or closed) are written
   with quantity 0, so the ERP's plan drops them; buckets of past months are
   left as they are (history, not plan).

Retrying a forecast flow's dead letters recomputes the whole forecast.
"""

from __future__ import annotations

__all__ = ["ForecastRunner", "month_start", "add_months", "bucket_key", "parse_bucket_key"]

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal

from crm2erp.contract import Cursor, Row
from crm2erp.engine.batch import RunResult, hold, record_key
from crm2erp.engine.inbound import validate
from crm2erp.engine.load import load
from crm2erp.engine.resolver import canonical_id_for
from crm2erp.engine.runner import FlowRunner
from crm2erp.engine.stages import Item
from crm2erp.errors import ConfigError, RecordError
from crm2erp.jsonutil import payload_hash
from crm2erp.schemas import entity_model
from crm2erp.store import BatchCommit, XrefUpsert

log = logging.getLogger(__name__)

QUANTUM = Decimal("0.000001")     # the canonical Quantity's six decimal places
HUNDRED = Decimal(100)


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(month: dt.date, count: int) -> dt.date:
    """The first day of the month ``count`` months after ``month``'s."""
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def bucket_key(product_code: str, period: dt.date) -> str:
    """``"<product>|<YYYY-MM>"``: the bucket's key in the xref and the dead letters."""
    return f"{product_code}|{period:%Y-%m}"


def parse_bucket_key(key: str) -> tuple[str, dt.date]:
    product, _, month = key.rpartition("|")
    return product, dt.date.fromisoformat(month + "-01")


class ForecastRunner(FlowRunner):
    """Runs a flow with a ``forecast:`` section (see the module docstring)."""

    def __init__(self, flow, **kwargs):
        if kwargs.get("write_back") is not None:
            raise ConfigError(f"forecast flow {flow.flow!r} cannot write back")
        super().__init__(flow, **kwargs)
        self.spec = flow.forecast
        self.opportunity_model = entity_model(self.spec.from_entity)
        # the forecast's own "system" in the xref: its buckets, scoped to this flow
        self.forecast_system = f"forecast:{flow.flow}"
        self.today = dt.date.today          # replaceable, for tests and back-dated runs
        self.buckets: dict[tuple[str, dt.date], Decimal] = {}

    # -- public -----------------------------------------------------------
    def run(self, *, mode: str = "incremental", since: Cursor | None = None,
            dry_run: bool = False, partition: int | None = None) -> RunResult:
        """Compute the forecast from the whole source and write what changed.

        ``mode`` and ``since`` change nothing: every run reads everything.
        """
        if partition is not None:
            raise ConfigError(f"forecast flow {self.flow.flow!r} has no partitions: a "
                              "forecast sums over the whole source")
        if since is not None:
            log.info("flow %s: a forecast reads the whole source; 'since' is ignored",
                     self.flow.flow)
        self._set_partition(None)
        self.mode = mode
        return self._managed(self.run_label(mode, dry_run), self._forecast, dry_run=dry_run)

    def reread(self, letters) -> tuple[list[Row], list[str]]:
        return [], []   # a retry recomputes the whole forecast from the source

    def _process(self, rows: list[Row], cursor: Cursor | None, result: RunResult,
                 **_ignored) -> None:
        """Retrying dead letters (``replay``): a forecast is only ever recomputed whole."""
        self._forecast(result)

    # -- the two phases -----------------------------------------------------
    def _forecast(self, result: RunResult) -> None:
        self.buckets = {}
        self.first = month_start(self.today())
        self.last = add_months(self.first, self.spec.horizon_months - 1)
        batch_size = self.flow.incremental.batch_size if self.flow.incremental else 500
        for batch in self.source.read(self.flow.source.stream, None, batch_size=batch_size):
            self._accumulate(batch.rows, result)
            if self.progress:
                self.progress(result)
        self._emit(result, batch_size)
        for stage in self.stages:
            stage.finish(self.context)

    def _accumulate(self, rows: list[Row], result: RunResult) -> None:
        """Map and validate one batch of deals and add them to the buckets."""
        counts: Counter = Counter(read=len(rows))
        commit = BatchCommit(run_id=result.run_id, flow=self.flow.flow, counts=counts)
        self.context.rows_read += len(rows)
        key_fields = self.source_stream.identity
        for row in rows:
            source_key = record_key(row, key_fields)
            try:
                if not self.inbound.matches(row):
                    counts["skipped"] += 1
                else:
                    data = self.inbound.apply(row, self.resolver)
                    self._add(validate(self.opportunity_model, data), counts)
            except RecordError as exc:
                hold(commit, counts, exc.stage, source_key, str(exc), row)
                continue
            commit.resolved_keys.append(source_key)
        self._commit(commit, counts, result)

    def _add(self, deal, counts: Counter) -> None:
        """Add one deal's weighted lines to the buckets, or count it skipped."""
        if deal.stage.value not in self.spec.stages or deal.close_date is None:
            counts["skipped"] += 1
            return
        period = month_start(deal.close_date)
        if period < self.first and self.spec.overdue == "current_month":
            period = self.first
        if not self.first <= period <= self.last:
            counts["skipped"] += 1
            return
        if self.spec.weight == "none":
            weight = Decimal(1)
        elif deal.probability is None:
            counts["skipped"] += 1
            return
        else:
            weight = deal.probability / HUNDRED
        lines = [line for line in deal.lines if line.product_code]
        for line in lines:
            bucket = (line.product_code, period)
            self.buckets[bucket] = self.buckets.get(bucket, Decimal(0)) + line.quantity * weight
        counts["forecast_deals" if lines else "skipped"] += 1

    def _emit(self, result: RunResult, batch_size: int) -> None:
        """One ForecastLine per bucket, plus a zero for each bucket that emptied."""
        previous = dict(self.store.iter_xref(self.flow.entity, self.forecast_system))
        keys = {bucket_key(p, m): (p, m) for p, m in self.buckets}
        for key in previous:
            if key not in keys:
                product, period = parse_bucket_key(key)
                if period >= self.first:            # past months are history: left alone
                    keys[key] = (product, period)
        ordered = sorted(keys.items(), key=lambda kv: (kv[1][1], kv[1][0]))
        for start in range(0, len(ordered), batch_size):
            self._emit_batch(ordered[start:start + batch_size], previous, result)

    def _emit_batch(self, part: Iterable[tuple[str, tuple[str, dt.date]]],
                    previous: dict[str, str], result: RunResult) -> None:
        counts: Counter = Counter()
        commit = BatchCommit(run_id=result.run_id, flow=self.flow.flow, counts=counts)
        items = []
        for key, (product, period) in part:
            quantity = self.buckets.get((product, period), Decimal(0))
            row = {"key": key, "product_code": product, "period": period,
                   "quantity": quantity.quantize(QUANTUM, ROUND_HALF_EVEN)}
            canonical_id = previous.get(key) or canonical_id_for(
                self.flow.entity, self.forecast_system, key)
            try:
                record = validate(self.model, {
                    "id": canonical_id, "product_code": product, "period": period,
                    "quantity": row["quantity"], "uom": self.spec.uom,
                    "warehouse": self.spec.warehouse})
            except RecordError as exc:
                hold(commit, counts, exc.stage, key, str(exc), row)
                continue
            items.append(Item(key, row, canonical_id, record))
        counts["forecast_lines"] += len(items)
        load(self, items, counts, commit)
        self._commit(commit, counts, result)

    # -- the xref of a bucket ---------------------------------------------
    def source_xref(self, item: Item) -> XrefUpsert:
        """Buckets are this flow's own records: keyed by ``product|YYYY-MM``."""
        return XrefUpsert(self.flow.entity, self.forecast_system, item.source_key,
                          item.canonical_id, payload_hash(item.source_row))

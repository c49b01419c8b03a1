"""The sync engine: runs a project's flows against its connections.

>>> engine = Engine(load_project("mappings/demo"), StateStore.open())
>>> result = engine.run("demo_accounts")            # doctest: +SKIP
"""

from __future__ import annotations

__all__ = ["Engine", "FlowRunner", "RunResult", "Change", "order_flows", "parse_since",
           "retry_dead_letters"]

import graphlib
from collections import defaultdict
from collections.abc import Iterable

from crm2erp.engine.connections import ConnectionPool
from crm2erp.engine.cursors import parse_since
from crm2erp.engine.deadletters import replay
from crm2erp.engine.runner import Change, FlowRunner, RunResult
from crm2erp.errors import ConfigError
from crm2erp.mapping import compile_mapping


def order_flows(flows: dict, names: Iterable[str] | None = None) -> list[str]:
    """Flow names with every flow after the flows it depends on (parents first)."""
    names = list(flows) if names is None else list(names)
    for name in names:
        if name not in flows:
            raise ConfigError(f"unknown flow {name!r} (flows: {', '.join(sorted(flows))})")
    graph = {n: [d for d in (flows[n].depends_on or []) if d in names] for n in names}
    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise ConfigError(f"flows depend on each other in a cycle: {exc.args[1]}") from None


class Engine:
    """A project, its state store and its open connections."""

    def __init__(self, project, store):
        self.project = project
        self.store = store
        self.pool = ConnectionPool(project.connections)
        self._runners: dict[str, FlowRunner] = {}

    def runner(self, flow_name: str, progress=None) -> FlowRunner:
        if flow_name not in self.project.flows:
            raise ConfigError(f"unknown flow {flow_name!r} "
                              f"(flows: {', '.join(sorted(self.project.flows))})")
        if flow_name not in self._runners:
            flow = self.project.flows[flow_name]
            runner_class = FlowRunner
            if getattr(flow, "forecast", None) is not None:   # sums deals per product/month
                from crm2erp.engine.forecast import ForecastRunner
                runner_class = ForecastRunner
            self._runners[flow_name] = runner_class(
                flow,
                inbound=compile_mapping(self.project.mapping(flow.source_mapping_path),
                                        system=flow.source.connection),
                outbound=compile_mapping(self.project.mapping(flow.target_mapping_path),
                                         system=flow.target.connection),
                source=self.pool.get(flow.source.connection),
                target=self.pool.get(flow.target.connection),
                write_back=(self.pool.get(flow.write_back.connection)
                            if flow.write_back else None),
                store=self.store)
        runner = self._runners[flow_name]
        runner.progress = progress
        return runner

    def run(self, flow_name: str, *, mode: str = "incremental", since=None,
            dry_run: bool = False, progress=None, partition: int | None = None) -> RunResult:
        return self.runner(flow_name, progress).run(mode=mode, since=since, dry_run=dry_run,
                                                    partition=partition)

    def run_all(self, names: Iterable[str] | None = None, **options) -> list[RunResult]:
        return [self.run(name, **options) for name in order_flows(self.project.flows, names)]

    def retry(self, dead_letters) -> list[RunResult]:
        by_flow = defaultdict(list)
        for letter in dead_letters:
            by_flow[letter.flow].append(letter)
        return [replay(self.runner(flow), letters)
                for flow in order_flows(self.project.flows, by_flow)
                for letters in [by_flow[flow]]]

    def close(self) -> None:
        self.pool.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def retry_dead_letters(project, store, letters) -> tuple[list, list[RunResult], list[int]]:
    """Run the open and parked ones of ``letters`` again through their flows (the
    one way ``crm2erp dlq retry`` and the console retry). Returns the letters
    retried, the run results, and the ids of the retried letters still held back."""
    letters = [x for x in letters if x.status in ("open", "parked")]
    if not letters:
        return [], [], []
    with Engine(project, store) as engine:
        results = engine.retry(letters)
    # what is still held back: the letters retried, not other open ones
    still = [x.id for x in letters
             if store.get_dead_letter(x.id).status in ("open", "parked")]
    return letters, results, still

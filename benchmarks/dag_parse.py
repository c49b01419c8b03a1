"""DAG parse time per flow: what the Airflow DAG processor pays for crm2erp's DAGs.

Builds a project of N copies of the demo's ``demo_accounts`` flow (each its
own ``flow:`` name, all sharing the demo's connections and mappings), then
times, per flow:

* ``cold``: ``build_dags()`` with an empty scan cache (a new process, or a
  file changed): scan (YAML, validation) plus building the Airflow DAGs;
* ``scan``: the scan part of ``cold``;
* ``warm``: ``build_dags()`` again while no file changed (the scan is reused:
  only the DAG objects are built);
* ``floor``: Airflow alone building the same 3-task DAG N times from
  constants, with no crm2erp code: what any DAG of this shape costs.

Usage (by hand; the numbers depend on the machine)::

    python benchmarks/dag_parse.py [--sizes 10 100 500] [--repeat 3]

The best of ``--repeat`` runs is reported. Needs the ``airflow`` extra.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from airflow.sdk import dag, task

from crm2erp.mappings import pack_dir
from crm2erp.orchestration import factory, projects


def make_project(root: Path, flows: int) -> Path:
    """A project folder with ``flows`` flow files; the folder."""
    demo = pack_dir("demo")
    root.mkdir(parents=True)
    shutil.copy(demo / "connections.yaml", root / "connections.yaml")
    shutil.copytree(demo / "maps", root / "maps")
    template = (demo / "accounts.flow.yaml").read_text()
    for i in range(flows):
        (root / f"bench_{i:04d}.flow.yaml").write_text(
            template.replace("flow: demo_accounts", f"flow: bench_{i:04d}"))
    return root


def floor_dags(count: int) -> dict:
    """``count`` DAGs of the factory's shape, built by Airflow alone."""
    dags = {}
    for i in range(count):
        @dag(dag_id=f"floor_{i}", schedule="@hourly", catchup=False, tags=["floor"])
        def shape() -> None:
            @task(task_id="check_connections")
            def check() -> list[str]:
                return []

            @task(task_id="sync", multiple_outputs=False)
            def sync() -> dict:
                return {}

            @task(task_id="report", multiple_outputs=False)
            def report(results) -> dict:
                return {}

            synced = sync()
            check() >> synced
            report(synced)

        dags[f"floor_{i}"] = shape()
    return dags


def best(repeat: int, run: Callable[[], object], before: Callable[[], None] = lambda: None
         ) -> float:
    """The fastest of ``repeat`` runs of ``run``, in seconds (``before`` untimed)."""
    times = []
    for _ in range(repeat):
        before()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(flows: int, repeat: int, workdir: Path) -> dict[str, float]:
    root = make_project(workdir / f"p{flows}", flows)
    dirs = [root]
    clear = projects._SCANS.clear
    built = factory.build_dags(dirs)
    assert len(built) == flows, f"{len(built)} DAGs for {flows} flows"
    seconds = {
        "cold": best(repeat, lambda: factory.build_dags(dirs), clear),
        "scan": best(repeat, lambda: projects.scan_projects(dirs), clear),
        "warm": best(repeat, lambda: factory.build_dags(dirs)),
        "floor": best(repeat, lambda: floor_dags(flows)),
    }
    return {name: value * 1000 / flows for name, value in seconds.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)  # "flow ... is disabled" and the like
    workdir = Path(tempfile.mkdtemp(prefix="crm2erp-dag-parse-"))
    try:
        print("| flows | cold ms/flow | of which scan | warm ms/flow | floor ms/flow |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        for size in args.sizes:
            row = measure(size, args.repeat, workdir)
            print(f"| {size} | {row['cold']:.1f} | {row['scan']:.1f} | {row['warm']:.1f} "
                  f"| {row['floor']:.1f} |", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

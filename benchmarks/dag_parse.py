"""DAG parse time per flow: what the Airflow DAG processor pays for crm2erp's DAGs.

Builds a project of N copies of the demo's ``demo_accounts`` flow (each its
own ``flow:`` name, all sharing the demo's connections and mappings), then
times, per flow:

* ``pass``: what each DAG-processor pass pays while no file changed: Airflow
  parses the DAG file in a fresh process, so ``build_dags()`` runs with an
  empty in-process cache and reads the scan kept on disk, then builds the DAGs;
* ``changed``: ``build_dags()`` after a file changed (no kept scan): the
  scan (YAML, validation) plus building the DAGs;
* ``scan``: the scan part of ``changed``;
* ``floor``: Airflow alone building the same 3-task DAG N times from
  constants, with no crm2erp code: what any DAG of this shape costs.

The target is ``pass`` <= 5 ms per flow.

Usage (by hand; the numbers depend on the machine)::

    python benchmarks/dag_parse.py [--sizes 10 100 500] [--repeat 3]

The best of ``--repeat`` runs is reported. Needs the ``airflow`` extra.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from airflow.sdk import dag, task

from crm2erp.mappings import pack_dir
from crm2erp.orchestration import factory, projects, scan_cache


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
    built = factory.build_dags(dirs)
    assert len(built) == flows, f"{len(built)} DAGs for {flows} flows"

    def forget_all() -> None:
        scan_cache.clear_memory()
        for kept in scan_cache.cache_dir().glob("scan-*.pickle"):
            kept.unlink()

    seconds = {
        "pass": best(repeat, lambda: factory.build_dags(dirs), scan_cache.clear_memory),
        "changed": best(repeat, lambda: factory.build_dags(dirs), forget_all),
        "scan": best(repeat, lambda: projects.scan_projects(dirs), forget_all),
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
    os.environ[scan_cache.CACHE_DIR_ENV] = str(workdir / "cache")
    try:
        print("| flows | pass ms/flow | floor ms/flow | pass / floor | changed ms/flow "
              "| of which scan |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: |")
        for size in args.sizes:
            row = measure(size, args.repeat, workdir)
            print(f"| {size} | {row['pass']:.1f} | {row['floor']:.1f} "
                  f"| {row['pass'] / row['floor']:.1f}x | {row['changed']:.1f} "
                  f"| {row['scan']:.1f} |", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

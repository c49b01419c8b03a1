"""Run crm2erp flows under Apache Airflow: one DAG per flow.

>>> from crm2erp.orchestration import build_dags      # doctest: +SKIP
>>> globals().update(build_dags())                      # in a DAG file

The DAG factory and hooks import Airflow (``pip install 'crm2erp[airflow]'``);
they are loaded on first use, so ``crm2erp.orchestration.projects`` and the
provider metadata work without Airflow. See docs/airflow.md.
"""

from __future__ import annotations

__all__ = ["build_dags", "build_dag", "raise_config_errors", "flow_asset", "project_dirs",
           "scan_projects"]

from crm2erp.orchestration.projects import project_dirs, scan_projects

_FACTORY = {"build_dags", "build_dag", "raise_config_errors", "flow_asset"}


def __getattr__(name: str):
    if name in _FACTORY:
        from crm2erp.orchestration import factory

        return getattr(factory, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

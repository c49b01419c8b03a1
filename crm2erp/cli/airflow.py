"""``crm2erp airflow``: helpers for running crm2erp under Apache Airflow."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from crm2erp.cli.output import console, literal
from crm2erp.errors import ConfigError

app = typer.Typer(no_args_is_help=True, help="Apache Airflow helpers.")


def shipped_dag_files() -> list[Path]:
    """The DAG files shipped in the package (``crm2erp.dags``)."""
    from importlib.resources import files

    folder = Path(str(files("crm2erp.dags")))
    return sorted(folder.glob("crm2erp_*.py"))


@app.command("install-dags")
def install_dags(
    directory: Path = typer.Argument(..., help="The Airflow DAGs folder, e.g. "
                                               "$AIRFLOW_HOME/dags (created if missing)."),
) -> None:
    """Copy crm2erp's DAG files into DIRECTORY (existing copies are replaced)."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} is not a folder: give the Airflow DAGs folder")
    sources = shipped_dag_files()
    if not sources:
        raise ConfigError("no DAG files found in the installed crm2erp.dags package; "
                          "reinstall crm2erp")
    directory.mkdir(parents=True, exist_ok=True)
    for source in sources:
        shutil.copyfile(source, directory / source.name)
        console.print(literal(f"installed {directory / source.name}"))
    console.print("Set CRM2ERP_PROJECT to your project folder for the DAG processor and "
                  "the workers; see docs/airflow.md.")

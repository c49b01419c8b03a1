"""Airflow DAGs of the crm2erp flows: one DAG per ``*.flow.yaml``.

The flows are read from the folder(s) in the Airflow Variable
``crm2erp_project`` or ``$CRM2ERP_PROJECT`` (default: the shipped packs).
Broken flow files get no DAG here; ``crm2erp_config_errors.py`` reports them.
See docs/airflow.md.
"""

from crm2erp.orchestration import build_dags

globals().update(build_dags())

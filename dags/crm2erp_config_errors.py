"""Reports broken crm2erp flow, mapping or connection files as an Airflow import error.

`airflow dags list-import-errors` then shows this file with every problem as
file:line:column: message, while the DAGs of the valid flows (built by
``crm2erp_flows.py``) keep loading. Nothing to do here when all files are valid.
"""

from crm2erp.orchestration import raise_config_errors

raise_config_errors()

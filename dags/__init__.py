"""The crm2erp DAG files, shipped in the wheel as ``crm2erp.dags``.

``crm2erp airflow install-dags DIR`` copies the ``crm2erp_*.py`` files of this
folder into an Airflow DAGs folder. This file itself defines nothing.
"""

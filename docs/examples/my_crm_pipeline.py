"""A DAG of your own that runs crm2erp flows among its other tasks
(docs/airflow.md, "In your own DAGs"). Put it in your DAGs folder and set
CRM2ERP_PROJECT to the folder of your flows."""

import datetime as dt

from airflow.sdk import dag, task

from crm2erp.orchestration.operators import CrmToErpSyncOperator, crm2erp_flow_group


@dag(dag_id="my_crm_pipeline", schedule=None, catchup=False,
     start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), tags=["example"])
def my_crm_pipeline():
    @task
    def crm_export_finished() -> str:
        return "the CRM's nightly export is done"

    accounts = crm2erp_flow_group("demo_accounts")           # check -> sync -> report
    orders = CrmToErpSyncOperator(task_id="sync_orders", flow="demo_orders")
    crm_export_finished() >> accounts >> orders


my_crm_pipeline()

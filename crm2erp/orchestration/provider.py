"""Airflow provider metadata (entry point ``apache_airflow_provider``).

Airflow reads this without importing the hooks, to list crm2erp's connection
types in the UI with the right field labels (declarative ``conn-fields`` and
``ui-field-behaviour``, the Airflow 3.2+ way). Importing this module must not
import Airflow.
"""

from __future__ import annotations

__all__ = ["get_provider_info"]

from importlib.metadata import PackageNotFoundError, version

_HOOKS = "crm2erp.orchestration.hooks"


def _version() -> str:
    try:
        return version("crm2erp")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0"


def get_provider_info() -> dict:
    return {
        "package-name": "crm2erp",
        "name": "crm2erp",
        "description": "Sync CRM and ERP systems: one DAG per crm2erp flow, and connection "
                       "types that hold the connectors' credentials.",
        "versions": [_version()],
        "connection-types": [
            {
                "connection-type": "crm2erp_sql",
                "hook-class-name": f"{_HOOKS}.SqlConnectionHook",
                "hook-name": "crm2erp SQL database",
                "ui-field-behaviour": {
                    "hidden-fields": [],
                    "relabeling": {"schema": "Database"},
                    "placeholders": {
                        "host": "db.example.com",
                        "schema": "erp",
                        "extra": '{"drivername": "postgresql+psycopg", "schema": "public"}',
                    },
                },
            },
            {
                "connection-type": "crm2erp_api",
                "hook-class-name": f"{_HOOKS}.ApiConnectionHook",
                "hook-name": "crm2erp API (HTTP)",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {"host": "Base URL", "login": "Username / client id",
                                   "password": "Password / secret / API key"},
                    "placeholders": {
                        "host": "https://api.example.com",
                        "extra": '{"auth": {"type": "client_credentials", '
                                 '"token_url": "https://id.example.com/token"}}',
                    },
                },
            },
            {
                "connection-type": "crm2erp_salesforce",
                "hook-class-name": f"{_HOOKS}.SalesforceConnectionHook",
                "hook-name": "crm2erp Salesforce",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "Instance URL", "login": "Client id",
                                   "password": "Client secret"},
                    "placeholders": {"host": "https://yourdomain.my.salesforce.com",
                                     "extra": '{"api_version": "61.0"}'},
                },
            },
            {
                "connection-type": "crm2erp",
                "hook-class-name": f"{_HOOKS}.Crm2ErpHook",
                "hook-name": "crm2erp connector (extra JSON = settings)",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "login", "password", "port"],
                    "relabeling": {"extra": "Connector settings (JSON)"},
                    "placeholders": {},
                },
            },
        ],
    }

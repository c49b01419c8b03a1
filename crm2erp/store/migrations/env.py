"""Alembic environment of the state store.

crm2erp runs migrations programmatically and hands over an open connection in
``config.attributes["connection"]``. For developers running the ``alembic``
command (``alembic -c crm2erp/store/migrations/alembic.ini ...``) a URL from
``sqlalchemy.url`` or ``CRM2ERP_STATE_URL`` is used instead.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from crm2erp.store.migrations import VERSION_TABLE
from crm2erp.store.tables import metadata

config = context.config


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,  # not alembic_version: Airflow's DB may hold it
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER on SQLite
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = (config.get_main_option("sqlalchemy.url")
           or os.environ.get("CRM2ERP_STATE_URL", "sqlite:///crm2erp-state.db"))
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()

"""Alembic migrations of the state store, applied by :func:`crm2erp.store.migrate.upgrade`.

The store keeps its revision in its own table, :data:`VERSION_TABLE`, so it can
share a database with another Alembic user (Airflow's metadata keeps its
revision in ``alembic_version``). Stores made before that kept it in
:data:`LEGACY_VERSION_TABLE`; :func:`crm2erp.store.migrate.upgrade` moves it.
"""

VERSION_TABLE = "crm2erp_alembic_version"
LEGACY_VERSION_TABLE = "alembic_version"

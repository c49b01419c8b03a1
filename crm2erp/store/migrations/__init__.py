"""Alembic migrations of the state store, applied by :func:`crm2erp.store.migrate.upgrade`."""

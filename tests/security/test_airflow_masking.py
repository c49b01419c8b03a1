"""Secrets of connections.yaml reach Airflow's task-log masker (tracebacks included)."""

from __future__ import annotations

import textwrap


def test_connections_yaml_secrets_are_masked_in_airflow_task_logs(tmp_path):
    from airflow.sdk.log import _secrets_masker

    import crm2erp.orchestration.tasks  # noqa: F401 - installs the listener
    from crm2erp.mapping import load_connections

    path = tmp_path / "connections.yaml"
    path.write_text(textwrap.dedent("""\
        connections:
          erp:
            type: sql
            url: postgresql://erp:${ERP_DB_PASSWORD_T}@db.example/erp
            streams: {t: {table: t, key: id}}
        """), encoding="utf-8")
    load_connections(path, env={"ERP_DB_PASSWORD_T": "pg-pass-for-airflow-77"})
    masked = _secrets_masker().redact("connect failed with pg-pass-for-airflow-77")
    assert "pg-pass-for-airflow-77" not in masked and "***" in masked
